-- GET miss: /get of a key that is never stored. 404 is the expected answer, so this script
-- counts (in `bad`) every answer that is not 404; wrk's own status count is ignored here.
-- (The response() hook makes wrk parse headers and body, which costs wrk a little CPU.)
function request()
  return wrk.format("GET", string.format("/get?key=miss:%012d", math.random(0, KEYS - 1)))
end

function response(status, headers, body)
  if status ~= 404 then
    bad = bad + 1
  end
end
