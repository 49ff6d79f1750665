-- W8: POST /api/credit-notes on a paid invoice, refunding the note's whole total. Sent in
-- file order, each thread its own lines, so no invoice is credited twice (a wrap is counted:
-- its requests would credit an invoice again); responses are counted by status class.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
local common = require("common")

setup = common.setup
done = common.done
response = common.count_response
function init(args)
  request = common.sequential_picker(common.load(args))
end
