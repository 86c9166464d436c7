#pragma once
// The JSON bridge between the host and a Lua state: JSON values into Lua and back.
//
// What a hook receives (a request, an answer, a chunk) arrives lazily: one block that indexes the
// parsed document (json_index.hpp: a userdata, counted against the state's memory cap and freed by
// the collector), and tables that read a value from it when the script first asks for it. A
// policy that reads `req.user` no longer pays for turning every message into a table and every
// key into a Lua string. To a script the tables are plain tables (docs/plugins.md): what needs all
// of a table's fields (pairs, next, the raw functions, setmetatable, # on an object) fills that
// table first; an array's # and elements need no filling.
#include <nlohmann/json_fwd.hpp>

#include <string_view>

struct lua_State;

namespace plexus::lua {

// Called once per state, with the sandbox's environment at `env`: the array and lazy metatables,
// and sandbox versions of next, rawget, rawlen and rawset that fill a lazy table before looking.
void register_json(lua_State* L, int env);

// Pushes plexus.null.
void push_null(lua_State* L);
// Arrays decode with a marker metatable so an empty array encodes back as []; JSON null is
// plexus.null.
void push_json(lua_State* L, const nlohmann::json& value);
// Parses `text` and pushes it as lazy tables (a scalar as itself); false (nothing pushed) when it
// is not JSON. May raise a Lua error (memory): call it inside Vm::run.
bool push_json_text(lua_State* L, std::string_view text);
// The value at `index` as JSON (lua_json_encode.cc); throws std::runtime_error for what JSON
// cannot hold. Raises no Lua error (it allocates nothing in the state), so it may be called with
// C++ objects on the stack.
nlohmann::json to_json(lua_State* L, int index);
// Fills the table at `index` if it is still lazy (a no-op otherwise): for host functions that look
// at a table raw.
void fill_lazy_table(lua_State* L, int index);

}  // namespace plexus::lua
