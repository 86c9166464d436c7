#pragma once
// What a Lua hook sees of the host: `ctx` and the routing candidates, as userdata views whose
// fields are read (and, for a candidate's score and dropped, written) on demand, straight from
// the C++ objects. Nothing is copied into tables per call: an on_route over 1,000 candidates
// costs what the policy reads. Each kind of view has one metatable per Lua state, registered
// once. A view only works during the hook call it was made for; kept and used later, it raises
// an error instead of touching a context that is gone.
#include <cstdint>
#include <memory>
#include <vector>

#include "plexus/plugin.hpp"

struct lua_State;

namespace plexus::lua {

class Vm;

// Which hook call a view belongs to: the plugin's call counter at the time, and where the
// plugin keeps the number of the call in progress (0 between calls).
struct CallStamp {
  std::uint64_t call;
  const std::uint64_t* running;
};

// Registers the view metatables in a fresh state, and wraps the sandbox's `ipairs` (its global
// table at `env`) so that iterating the candidates costs one call per candidate, not two.
void register_views(lua_State* L, int env);

// Pushes `ctx` for a hook. `vm` owns the per-request `ctx.state` tables (made on first use).
void push_ctx(lua_State* L, HookContext& ctx, CallStamp stamp, const std::shared_ptr<Vm>& vm);
// Pushes the candidates of an on_route call: `#cands`, `cands[i]`, `ipairs(cands)`.
void push_candidates(lua_State* L, std::vector<Candidate>& candidates, CallStamp stamp);

}  // namespace plexus::lua
