// Lua values back into JSON: what a hook hands back (a MODIFIED request or chunk, ctx:respond,
// ctx:insert) and plexus.json_encode. The parts of a lazy table the script never read are
// encoded straight from the document's index. Raises no Lua error: it allocates nothing in the
// state, so C++ objects may sit on the stack around it.
#include <lua.hpp>
#include <nlohmann/json.hpp>

#include <bit>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "plugins/lua/lazy_table.hpp"
#include "plugins/lua/lua_extras.hpp"
#include "plugins/lua/lua_json.hpp"

namespace plexus::lua {
namespace {

using nlohmann::json;
using json_index::Kind;
using json_index::Node;
using lazy::Source;

constexpr int kMaxEncodeDepth = 64;

json node_to_json(const Source& s, std::uint32_t i, int depth) {
  if (depth > kMaxEncodeDepth) throw std::runtime_error("nesting deeper than 64");
  const Node& n = s.nodes()[i];
  switch (n.kind) {
    case Kind::kNull: return nullptr;
    case Kind::kTrue: return true;
    case Kind::kFalse: return false;
    case Kind::kInt: return std::bit_cast<std::int64_t>(n.value);
    case Kind::kDouble: return std::bit_cast<double>(n.value);
    case Kind::kString: return std::string(s.text() + n.value, n.size);
    case Kind::kArray: {
      json out = json::array();
      for (std::uint32_t j = i + 1; j < n.span.end; j = json_index::after(s.nodes(), j))
        out.push_back(node_to_json(s, j, depth + 1));
      return out;
    }
    case Kind::kObject: {
      json out = json::object();
      json_index::each_member(s.nodes(), i, [&](std::uint32_t key, std::uint32_t value) {
        out[std::string(s.string(key))] = node_to_json(s, value, depth + 1);
      });
      return out;
    }
  }
  return nullptr;
}

json to_json_depth(lua_State* L, int index, int depth);

// A table's raw contents (a lazy table's hidden entries left out) as JSON; `members` has what its
// document still holds for it, or is null.
json table_to_json(lua_State* L, int index, int depth, json members) {
  bool marked_array = false;
  if (lua_getmetatable(L, index)) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, extras_of(L).array_meta);
    marked_array = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, index));
  std::size_t keys = 0;
  lua_pushnil(L);
  while (lua_next(L, index)) {
    if (!lazy::hidden_key(L, -2)) ++keys;
    lua_pop(L, 1);
  }
  if (members.is_null() && (marked_array || (n > 0 && keys == static_cast<std::size_t>(n)))) {
    json arr = json::array();
    for (lua_Integer i = 1; i <= n; ++i) {
      lua_rawgeti(L, index, i);
      arr.push_back(to_json_depth(L, -1, depth + 1));
      lua_pop(L, 1);
    }
    return arr;
  }
  json obj = members.is_null() ? json::object() : std::move(members);
  lua_pushnil(L);
  while (lua_next(L, index)) {
    if (lazy::hidden_key(L, -2)) {
      lua_pop(L, 1);
      continue;
    }
    if (lua_type(L, -2) != LUA_TSTRING) throw std::runtime_error("object keys must be strings");
    obj[lua_tostring(L, -2)] = to_json_depth(L, -1, depth + 1);
    lua_pop(L, 1);
  }
  return obj;
}

// A lazy table: what it holds raw, and the values of its document it has not taken. An array is
// its elements up to the length `#` gives (what the same table built whole encodes as).
json lazy_to_json(lua_State* L, int index, const Source& s, int depth) {
  const Node& c = s.self();
  if (s.array()) {
    json out = json::array();
    lua_Integer n = lazy::length(L, index, s);
    for (lua_Integer k = 1; k <= n; ++k) {
      if (k <= c.size && !s.element(static_cast<std::uint32_t>(k)).taken) {
        out.push_back(node_to_json(s, s.element_node(static_cast<std::uint32_t>(k)), depth + 1));
        continue;
      }
      lua_rawgeti(L, index, k);
      out.push_back(to_json_depth(L, -1, depth + 1));
      lua_pop(L, 1);
    }
    return out;
  }
  json members = json::object();
  s.each_member([&](std::uint32_t key, std::uint32_t value) {
    if (!s.nodes()[value].taken) members[std::string(s.string(key))] = node_to_json(s, value, depth + 1);
  });
  // Nothing left in the document: the table is what it holds, judged as any other (a script may
  // have emptied an object and filled it as a list).
  return table_to_json(L, index, depth, members.empty() ? json() : std::move(members));
}

json to_json_depth(lua_State* L, int index, int depth) {
  if (depth > kMaxEncodeDepth) throw std::runtime_error("nesting deeper than 64");
  index = lua_absindex(L, index);
  switch (lua_type(L, index)) {
    case LUA_TNIL: return nullptr;
    case LUA_TBOOLEAN: return static_cast<bool>(lua_toboolean(L, index));
    case LUA_TNUMBER:
      if (lua_isinteger(L, index)) return static_cast<std::int64_t>(lua_tointeger(L, index));
      return lua_tonumber(L, index);
    case LUA_TSTRING: {
      size_t n = 0;
      const char* s = lua_tolstring(L, index, &n);
      return std::string(s, n);
    }
    case LUA_TLIGHTUSERDATA:
      if (lazy::is_null(lua_touserdata(L, index))) return nullptr;
      throw std::runtime_error("cannot encode a userdata");
    case LUA_TTABLE: {
      // Each level holds a key and a value while the next one runs: room for them, or a clean
      // refusal (lua_checkstack raises nothing).
      if (!lua_checkstack(L, 4)) throw std::runtime_error("nesting too deep");
      Source s;
      if (lazy::source(L, index, s)) return lazy_to_json(L, index, s, depth);
      return table_to_json(L, index, depth, json());
    }
    default:
      throw std::runtime_error(std::string("cannot encode a ") + luaL_typename(L, index));
  }
}

}  // namespace

json to_json(lua_State* L, int index) { return to_json_depth(L, index, 0); }

}  // namespace plexus::lua
