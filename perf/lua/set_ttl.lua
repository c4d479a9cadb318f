-- SET with a TTL: /set?key=K&value=V&ttl=60s over the preloaded keys. Run last on a server:
-- afterwards its keys expire 60 s later.
function request()
  return wrk.format("GET", "/set?key=" .. random_key() .. "&value=" .. VALUE .. "&ttl=60s")
end
