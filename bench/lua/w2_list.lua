-- W2: GET /api/invoices?status=open&limit=50, the first cursor page of a random tenant.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
local common = require("common")

setup = common.setup
done = common.done
function init(args)
  request = common.random_picker(common.load(args))
end
