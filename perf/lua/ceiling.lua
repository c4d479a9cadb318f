-- The ceiling: the same request shape as GET hit, against the fixed-body server.
function request()
  return wrk.format("GET", "/get?key=" .. random_key())
end
