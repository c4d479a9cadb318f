-- 90/10 get/set mix over the preloaded key range (1M distinct keys in the standard suite).
function request()
  if math.random(1, 10) == 1 then
    return wrk.format("GET", "/set?key=" .. random_key() .. "&value=" .. VALUE)
  end
  return wrk.format("GET", "/get?key=" .. random_key())
end
