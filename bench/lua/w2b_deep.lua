-- W2b: the whale tenant's open invoices at one fixed depth: the first page, the 200th by
-- cursor, or the 200th by OFFSET (the runner writes the one request of each variant).
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
local common = require("common")

setup = common.setup
done = common.done
function init(args)
  request = common.random_picker(common.load(args))
end
