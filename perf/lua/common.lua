-- Shared by every workload: run.sh prepends this file to the workload's script.
--
-- Parameters come from the environment (wrk gives scripts no other channel to the main state):
--   PERF_KEYS         keys are key:%012d for 0 <= i < PERF_KEYS (the preloaded range)
--   PERF_VALUE_BYTES  value size for writes (default 100)
--   PERF_BATCH        items per mget/mset body (default 10)
--   PERF_THREADS      wrk -t, so the preload can split the key range between threads
-- done() prints one machine-readable line starting with "PERF " that run.sh parses; latencies
-- are in microseconds.

KEYS = tonumber(os.getenv("PERF_KEYS") or "1000000")
VALUE_BYTES = tonumber(os.getenv("PERF_VALUE_BYTES") or "100")
BATCH = tonumber(os.getenv("PERF_BATCH") or "10")
NTHREADS = tonumber(os.getenv("PERF_THREADS") or "2")
VALUE = string.rep("v", VALUE_BYTES)

local threads = {}
local next_tid = 0

-- Runs in the main Lua state, once per wrk thread, before the thread's init().
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

function key(i)
  return string.format("key:%012d", i)
end

function random_key()
  return key(math.random(0, KEYS - 1))
end

-- Runs in each thread's Lua state.
function init(args)
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
  bad = 0
  if workload_init then
    workload_init(args)
  end
end

-- Runs in the main state after the run.
function done(summary, latency, requests)
  local unexpected = 0
  for _, t in ipairs(threads) do
    unexpected = unexpected + (t:get("bad") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    "PERF requests=%d duration_us=%d status_errors=%d bad=%d connect=%d read=%d write=%d timeout=%d "
      .. "p50=%d p99=%d p999=%d mean=%.1f max=%d\n",
    summary.requests, summary.duration, e.status, unexpected, e.connect, e.read, e.write,
    e.timeout, latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max))
end
