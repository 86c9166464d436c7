#pragma once
// What the C functions of one Lua state reach without a Lua API call: Lua's extra space (one
// pointer in front of every coroutine, copied into each new one) points at this. The hot
// metamethods (a candidate's fields, read thousands of times per routing call) and the count
// hook read it on every call.
#include <lua.hpp>

namespace plexus::lua {

struct Budget;     // lua_vm.cc: the CPU time budget of the call in progress
struct ViewsData;  // lua_views.cc: the running on_route call and the field names

struct StateExtras {
  Budget* budget = nullptr;
  ViewsData* views = nullptr;
  // Registry slots of the metatables set on every hook call (a JSON array's, a lazy table's, ctx's,
  // the candidate list's): luaL_setmetatable looked each up by name, and checked the name with
  // strcmp.
  int array_meta = LUA_NOREF;
  int lazy_meta = LUA_NOREF;
  int ctx_meta = LUA_NOREF;
  int cands_meta = LUA_NOREF;
};

inline StateExtras& extras_of(lua_State* L) { return **static_cast<StateExtras**>(lua_getextraspace(L)); }

// Sets the metatable anchored at registry slot `ref` on the value at the top of the stack.
inline void set_metatable_at(lua_State* L, int ref) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  lua_setmetatable(L, -2);
}

// Anchors the table at the top of the stack in the registry and returns its slot (the table stays).
inline int anchor(lua_State* L) {
  lua_pushvalue(L, -1);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

}  // namespace plexus::lua
