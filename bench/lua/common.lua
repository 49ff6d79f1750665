-- Shared by every workload script. The runner writes each workload's requests to a file
-- (one per line) and passes its path after `--`; Lua only picks them, so the bodies, keys
-- and signatures are built once in Python and wrk's threads spend nothing on them.
--
-- Line format, tab-separated: thread, method, path, headers, body.
--   thread  "*" for every thread, or the 0-based wrk thread that alone sends the line
--           (a Lua counter is per thread, so ordered lists are split between threads)
--   headers "Name: value" pairs separated by the ASCII record separator (\30)
--   body    may be empty
-- done() prints one line `BENCH_JSON {...}` that the runner parses.

local M = {}

local threads = {}

-- Runs in wrk's main Lua state, once per thread, before that thread's init().
function M.setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local function split(line, sep)
  local fields, start = {}, 1
  while true do
    local i = string.find(line, sep, start, true)
    if not i then
      table.insert(fields, string.sub(line, start))
      return fields
    end
    table.insert(fields, string.sub(line, start, i - 1))
    start = i + #sep
  end
end

-- Every request this thread may send, already formatted by wrk.format.
function M.load(args)
  local path = args[1]
  assert(path, "pass the request file after --: wrk ... <url> -- <file>")
  local me = tostring(tid)
  local requests = {}
  for line in io.lines(path) do
    if #line > 0 then
      local f = split(line, "\t")
      if f[1] == "*" or f[1] == me then
        local headers = {}
        if f[4] and #f[4] > 0 then
          for _, pair in ipairs(split(f[4], "\30")) do
            local colon = string.find(pair, ":", 1, true)
            headers[string.sub(pair, 1, colon - 1)] = string.gsub(string.sub(pair, colon + 1), "^%s+", "")
          end
        end
        local body = f[5]
        if body == "" then body = nil end
        table.insert(requests, wrk.format(f[2], f[3], headers, body))
      end
    end
  end
  assert(#requests > 0, "no requests for thread " .. me .. " in " .. path)
  return requests
end

-- Counters read back in done(); globals, because thread:get reads a thread's globals.
sent, wraps, s2xx, s3xx, s4xx, s5xx = 0, 0, 0, 0, 0, 0
processed, duplicate, ignored = 0, 0, 0

function M.random_picker(requests)
  math.randomseed(os.time() + 7919 * (tid + 1))
  local n = #requests
  return function()
    sent = sent + 1
    return requests[math.random(n)]
  end
end

-- In file order; after the last one it starts again and counts the wrap, so the report
-- can say the list was too short rather than silently sending repeats.
function M.sequential_picker(requests)
  local n, i = #requests, 0
  return function()
    i = i + 1
    if i > n then
      i, wraps = 1, wraps + 1
    end
    sent = sent + 1
    return requests[i]
  end
end

-- wrk's response(status, headers, body) hook.
function M.count_response(status, _, body)
  if status >= 500 then
    s5xx = s5xx + 1
  elseif status >= 400 then
    s4xx = s4xx + 1
  elseif status >= 300 then
    s3xx = s3xx + 1
  else
    s2xx = s2xx + 1
  end
  if body then
    if string.find(body, '"processed"', 1, true) then
      processed = processed + 1
    elseif string.find(body, '"duplicate"', 1, true) then
      duplicate = duplicate + 1
    elseif string.find(body, '"ignored"', 1, true) then
      ignored = ignored + 1
    end
  end
end

local COUNTERS = { "sent", "wraps", "s2xx", "s3xx", "s4xx", "s5xx", "processed", "duplicate", "ignored" }

function M.done(summary, latency, _)
  local totals = {}
  for _, name in ipairs(COUNTERS) do
    totals[name] = 0
  end
  for _, thread in ipairs(threads) do
    for _, name in ipairs(COUNTERS) do
      totals[name] = totals[name] + (tonumber(thread:get(name)) or 0)
    end
  end
  local e = summary.errors
  local parts = {
    string.format('"requests":%d', summary.requests),
    string.format('"duration_us":%d', summary.duration),
    string.format('"bytes":%d', summary.bytes),
    string.format('"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d',
      e.connect, e.read, e.write, e.status, e.timeout),
    string.format('"p50_us":%d,"p90_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f',
      latency:percentile(50), latency:percentile(90), latency:percentile(95),
      latency:percentile(99), latency.max, latency.mean),
  }
  for _, name in ipairs(COUNTERS) do
    table.insert(parts, string.format('"%s":%d', name, totals[name]))
  end
  io.write("BENCH_JSON {" .. table.concat(parts, ",") .. "}\n")
end

return M
