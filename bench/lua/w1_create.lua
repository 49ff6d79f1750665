-- W1 (and W6): POST /api/invoices, 3 items, finalize: true; a random tenant per request
-- (each line carries one tenant's key and a body for its customer).
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
local common = require("common")

setup = common.setup
done = common.done
function init(args)
  request = common.random_picker(common.load(args))
end
