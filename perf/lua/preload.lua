-- Preload: thread t writes keys t, t+NTHREADS, t+2*NTHREADS, ... below KEYS with /set (no TTL),
-- each exactly once, then stops its event loop. run.sh watches /dashboard's key count and ends
-- wrk (SIGINT) as soon as all KEYS are stored; wrk's -d is only the upper bound.
function workload_init(args)
  next_key = tid
  -- wrk calls thread 0's request() once before the run to count pipelined requests; that
  -- answer is never sent, so it must not use up a key.
  probe = (tid == 0)
end

function request()
  if probe then
    probe = false
    return wrk.format("GET", "/health")
  end
  local i = next_key
  if i >= KEYS then
    wrk.thread:stop()
    return wrk.format("GET", "/health")
  end
  next_key = i + NTHREADS
  return wrk.format("GET", "/set?key=" .. key(i) .. "&value=" .. VALUE)
end
