-- W4: signed POST /api/webhooks/payments, pre-signed by the runner. Sent in file order,
-- each thread its own lines, so that every repeated webhook-id (20%) follows its first
-- delivery; responses are counted by status class and outcome for the double-apply check.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
local common = require("common")

setup = common.setup
done = common.done
response = common.count_response
function init(args)
  request = common.sequential_picker(common.load(args))
end
