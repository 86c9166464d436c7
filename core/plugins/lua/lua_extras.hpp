#pragma once
// What the C functions of one Lua state reach without a Lua API call: Lua's extra space (one
// pointer in front of every coroutine, copied into each new one) points at this. The hot
// metamethods (a candidate's fields, read thousands of times per routing call) and the count
// hook read it on every call.
#include <lua.hpp>

namespace plexus::lua {

struct Budget;     // lua_vm.cc: the instruction budget of the call in progress
struct ViewsData;  // lua_views.cc: the running on_route call and the field names

struct StateExtras {
  Budget* budget = nullptr;
  ViewsData* views = nullptr;
};

inline StateExtras& extras_of(lua_State* L) { return **static_cast<StateExtras**>(lua_getextraspace(L)); }

}  // namespace plexus::lua
