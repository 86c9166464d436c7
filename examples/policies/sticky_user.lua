-- The same user (the request's "user" field, else the API key) goes to the same node while that
-- node is healthy: rendezvous hashing, so a node leaving moves only its own users.
local hash = plexus.hash -- FNV-1a, in one C call; hash(b, hash(a)) == hash(a .. b)

function on_request(req, ctx)
  ctx.state.user = type(req.user) == "string" and req.user or ctx.key_id
  return plexus.CONTINUE
end

function on_route(cands, ctx)
  local user = ctx.state.user or ctx.key_id
  -- The hash of user .. "\0" .. node is the node's bytes hashed on from the user's, so the user's
  -- part is hashed once per request instead of once per candidate.
  local seed = hash(user .. "\0")
  local best, best_weight
  for i, c in ipairs(cands) do
    if c.healthy then
      local weight = hash(c.node, seed)
      if best == nil or weight > best_weight then
        best, best_weight = i, weight
      end
    end
  end
  if best then return plexus.PICK, best end
  return plexus.CONTINUE
end
