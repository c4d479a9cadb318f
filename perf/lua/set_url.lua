-- SET, the original tool's URL form: /set?key=K&value=<VALUE_BYTES bytes>, random preloaded keys
-- (overwrites, so the key count stays put).
function request()
  return wrk.format("GET", "/set?key=" .. random_key() .. "&value=" .. VALUE)
end
