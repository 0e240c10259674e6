-- wrk script for bench/run.sh: sends the same JSON POST on every request and prints one
-- machine-readable RESULT line at the end.
--
--   wrk ... -s bench/post.lua URL -- BODY_FILE
--
-- BENCH_METHOD replaces POST; BENCH_HEADER ("name: value") adds one header. With
-- BENCH_COUNT_STATUS=1 it also counts every non-2xx answer by class (this makes wrk hand each
-- response to Lua, which costs throughput; only the slow-upstream scenario uses it).

wrk.method = os.getenv("BENCH_METHOD") or "POST"
wrk.headers["Content-Type"] = "application/json"
local extra = os.getenv("BENCH_HEADER") -- "name: value", for wrk straight to mock_crm
if extra then
  local name, value = extra:match("^([^:]+):%s*(.*)$")
  wrk.headers[name] = value
end

function init(args)
  local f = assert(io.open(args[1], "rb"))
  wrk.body = f:read("*a")
  f:close()
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

if os.getenv("BENCH_COUNT_STATUS") == "1" then
  non2xx, s4xx, s429, s5xx = 0, 0, 0, 0

  function response(status, headers, body)
    if status < 200 or status > 299 then
      non2xx = non2xx + 1
      if status == 429 then
        s429 = s429 + 1
      elseif status >= 500 then
        s5xx = s5xx + 1
      elseif status >= 400 then
        s4xx = s4xx + 1
      end
    end
  end
end

local function thread_sum(name)
  local n = 0
  for _, t in ipairs(threads) do
    n = n + (tonumber(t:get(name)) or 0)
  end
  return n
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local counted = os.getenv("BENCH_COUNT_STATUS") == "1"
  io.write(string.format(
    "RESULT requests=%d secs=%.2f rps=%.0f p50_us=%d p99_us=%d max_us=%d " ..
    "sock_errors=%d connect=%d read=%d write=%d timeout=%d status_ge400=%d " ..
    "non2xx=%s s4xx=%s s429=%s s5xx=%s\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.timeout, e.connect, e.read, e.write, e.timeout, e.status,
    counted and thread_sum("non2xx") or "na", counted and thread_sum("s4xx") or "na",
    counted and thread_sum("s429") or "na", counted and thread_sum("s5xx") or "na"))
end
