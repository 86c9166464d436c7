-- The same user (the request's "user" field, else the API key) goes to the same node while that
-- node is healthy: rendezvous hashing, so a node leaving moves only its own users.
local function hash(s)
  local h = 2166136261
  for i = 1, #s do
    h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff
  end
  return h
end

function on_request(req, ctx)
  ctx.state.user = type(req.user) == "string" and req.user or ctx.key_id
  return plexus.CONTINUE
end

function on_route(cands, ctx)
  local user = ctx.state.user or ctx.key_id
  local best, best_weight
  for i, c in ipairs(cands) do
    local weight = hash(user .. "\0" .. c.node)
    if c.healthy and (best == nil or weight > best_weight) then
      best, best_weight = i, weight
    end
  end
  if best then return plexus.PICK, best end
  return plexus.CONTINUE
end
