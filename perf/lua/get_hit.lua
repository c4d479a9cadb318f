-- GET hit: /get of a random preloaded key.
function request()
  return wrk.format("GET", "/get?key=" .. random_key())
end
