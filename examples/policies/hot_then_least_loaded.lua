-- Nodes with the model already in memory first, then the least loaded; unhealthy nodes last.
function on_route(cands, ctx)
  for _, c in ipairs(cands) do
    c.score = (c.healthy and 1000000 or 0) + (c.hot and 1000 or 0) - c.in_flight
  end
  return plexus.CONTINUE
end
