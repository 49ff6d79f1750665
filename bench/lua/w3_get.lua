-- W3: GET /api/invoices/{id} with its items; a random (tenant, sample invoice) pair.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
local common = require("common")

setup = common.setup
done = common.done
function init(args)
  request = common.random_picker(common.load(args))
end
