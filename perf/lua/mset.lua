-- Batch write: POST /v1/mset with BATCH items (random preloaded keys, VALUE_BYTES values, no TTL).
local headers = { ["Content-Type"] = "application/json" }

function request()
  local items = {}
  for i = 1, BATCH do
    items[i] = '{"key":"' .. random_key() .. '","value":"' .. VALUE .. '"}'
  end
  return wrk.format("POST", "/v1/mset", headers, '{"items":[' .. table.concat(items, ",") .. "]}")
end
