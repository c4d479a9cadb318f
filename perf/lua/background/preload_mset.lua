-- Preload for perf/background.sh: POST /v1/mset of PERF_BATCH consecutive keys per request.
-- Thread t writes blocks t, t+NTHREADS, ... of the range 0 <= i < KEYS, each key exactly once
-- (same key:%012d names and VALUE_BYTES values as the load suite), then stops its event loop.
-- background.sh ends wrk (SIGINT) as soon as /dashboard counts all KEYS; -d is the upper bound.
-- common.lua is prepended.
local headers = { ["Content-Type"] = "application/json" }

function workload_init(args)
  next_block = tid
  -- wrk calls thread 0's request() once before the run to count pipelined requests; that
  -- answer is never sent, so it must not use up a block.
  probe = (tid == 0)
end

function request()
  if probe then
    probe = false
    return wrk.format("GET", "/health")
  end
  local first = next_block * BATCH
  if first >= KEYS then
    wrk.thread:stop()
    return wrk.format("GET", "/health")
  end
  next_block = next_block + NTHREADS
  local items = {}
  for i = first, math.min(first + BATCH, KEYS) - 1 do
    items[#items + 1] = '{"key":"' .. key(i) .. '","value":"' .. VALUE .. '"}'
  end
  return wrk.format("POST", "/v1/mset", headers, '{"items":[' .. table.concat(items, ",") .. "]}")
end
