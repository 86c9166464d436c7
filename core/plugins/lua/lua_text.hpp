#pragma once
// Text functions of the sandbox: its string.find, and helpers of the plexus module for what
// Lua's pattern functions did before the sandbox took them out. Each is one C call, linear in its
// input.
struct lua_State;

namespace plexus::lua {

// Adds them to the plexus table at `plexus_table`:
//   plexus.find_any(s, set [, init])  the position of the first byte of `s` (from `init`, as
//                                     string.find counts it) that is one of `set`'s bytes, or nil
//   plexus.hash(s [, h])              32-bit FNV-1a of `s`, carried on from `h` (the FNV offset
//                                     basis when absent): hash(b, hash(a)) == hash(a .. b)
void register_text(lua_State* L, int plexus_table);

// The sandbox's string.find (and s:find): plain text only, linear (lua_text.cc says why).
int plain_find(lua_State* L);

}  // namespace plexus::lua
