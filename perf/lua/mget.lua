-- Batch read: POST /v1/mget with BATCH random preloaded keys.
local headers = { ["Content-Type"] = "application/json" }

function request()
  local keys = {}
  for i = 1, BATCH do
    keys[i] = '"' .. random_key() .. '"'
  end
  return wrk.format("POST", "/v1/mget", headers, '{"keys":[' .. table.concat(keys, ",") .. "]}")
end
