-- The HTTP ceiling: GET /ping on bench/ceiling.py (bare FastAPI, served like tenvoice).
-- No request file: one fixed request, as cheap for wrk as a request can be.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
local common = require("common")

wrk.method = "GET"
wrk.path = "/ping"
setup = common.setup
done = common.done
