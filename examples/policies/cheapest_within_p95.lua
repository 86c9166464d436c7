-- Cheapest node whose P95 time-to-first-token is within a bound.
-- config: { "max_p95_ms": 2000 }
-- Nodes without latency data yet count as within the bound, so new nodes get traffic and data.
local max_p95 = plexus.config.max_p95_ms or 2000

function on_route(cands, ctx)
  -- Each field read is a call into the router, so each is read once, into a local.
  local best, best_price
  for i, c in ipairs(cands) do
    if c.healthy and c.latency_p95_ms <= max_p95 then
      local price = c.price_input_per_1k + c.price_output_per_1k
      if best == nil or price < best_price then best, best_price = i, price end
    end
  end
  if best then return plexus.PICK, best end
  -- Nobody meets the bound: prefer the fastest, so the request still has the best chance.
  for _, c in ipairs(cands) do c.score = -c.latency_p95_ms end
  return plexus.CONTINUE
end
