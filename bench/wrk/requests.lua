-- Generic wrk script for the CreativeFlow benchmark (bench/run.py writes its inputs).
--
--   wrk ... -s bench/wrk/requests.lua <url> -- <requests_file>
--
-- <requests_file> has one request per line, tab separated:
--   METHOD <TAB> PATH <TAB> BODY (may be empty)
-- Every request carries `Authorization: Bearer $BENCH_TOKEN` when that variable is set, and
-- `Content-Type: application/json` when it has a body. Each wrk thread starts at a different
-- line and then rotates through all lines, so a scenario can spread over several paths
-- (search words, idea ids, deep cursors) without any per-request Lua work beyond a table index:
-- the raw HTTP requests are formatted once, in init().
--
-- done() prints one line `WRK_JSON {...}` with the summary, error counts and latency percentiles
-- (microseconds), which bench/run.py parses instead of wrk's human-readable text.

local requests = {}
local index = 0
local threads_made = 0

-- Runs in wrk's main Lua state once per thread, before init(): number the threads.
function setup(thread)
  thread:set("thread_number", threads_made)
  threads_made = threads_made + 1
  thread:set("thread_count", tonumber(os.getenv("BENCH_THREADS") or "2"))
end

local function split_tabs(line)
  local fields = {}
  local start = 1
  while true do
    local tab = string.find(line, "\t", start, true)
    if not tab then
      fields[#fields + 1] = string.sub(line, start)
      return fields
    end
    fields[#fields + 1] = string.sub(line, start, tab - 1)
    start = tab + 1
  end
end

function init(args)
  local path = args[1]
  if not path then
    error("usage: wrk ... -s requests.lua <url> -- <requests_file>")
  end
  local token = os.getenv("BENCH_TOKEN")
  local file = assert(io.open(path, "r"))
  for line in file:lines() do
    if #line > 0 then
      local fields = split_tabs(line)
      local method, target, body = fields[1], fields[2], fields[3]
      if body == "" then body = nil end
      local headers = {}
      if token and #token > 0 then
        headers["Authorization"] = "Bearer " .. token
      end
      if body then
        headers["Content-Type"] = "application/json"
      end
      requests[#requests + 1] = wrk.format(method, target, headers, body)
    end
  end
  file:close()
  if #requests == 0 then
    error("no requests in " .. path)
  end
  -- Spread the threads over the rotation instead of all starting at line 1.
  local offset = math.floor(#requests * (thread_number or 0) / (thread_count or 1))
  index = offset % #requests
end

function request()
  index = index % #requests + 1
  return requests[index]
end

function done(summary, latency, requests_stats)
  local e = summary.errors
  local parts = {
    string.format('"duration_us":%d', summary.duration),
    string.format('"requests":%d', summary.requests),
    string.format('"bytes":%d', summary.bytes),
    string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
      e.connect, e.read, e.write, e.status, e.timeout),
    string.format('"latency_us":{"min":%d,"max":%d,"mean":%.1f,"stdev":%.1f,'
      .. '"p50":%d,"p75":%d,"p90":%d,"p95":%d,"p99":%d,"p999":%d}',
      latency.min, latency.max, latency.mean, latency.stdev,
      latency:percentile(50), latency:percentile(75), latency:percentile(90),
      latency:percentile(95), latency:percentile(99), latency:percentile(99.9)),
  }
  io.write("WRK_JSON {" .. table.concat(parts, ",") .. "}\n")
end
