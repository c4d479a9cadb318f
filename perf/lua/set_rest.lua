-- SET, REST form: PUT /v1/kv/{key} with the value as the body.
function request()
  return wrk.format("PUT", "/v1/kv/" .. random_key(), nil, VALUE)
end
