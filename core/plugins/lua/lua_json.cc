#include "plugins/lua/lua_json.hpp"

#include <lua.hpp>
#include <nlohmann/json.hpp>

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "plugins/lua/json_index.hpp"
#include "plugins/lua/lazy_table.hpp"
#include "plugins/lua/lua_extras.hpp"

namespace plexus::lua {
namespace {

alignas(8) char kNullSentinel;  // its address is plexus.null (even: candidate tokens are odd)
char kBoxKey, kNodeKey;         // a lazy table's hidden keys (below): light userdata no script can make

}  // namespace

namespace lazy {

bool source(lua_State* L, int t, Source& s) {
  if (lua_rawgetp(L, t, &kBoxKey) != LUA_TUSERDATA) {
    lua_pop(L, 1);
    return false;
  }
  s.box = static_cast<json_index::Box*>(lua_touserdata(L, -1));
  lua_pop(L, 1);  // the table keeps it
  lua_rawgetp(L, t, &kNodeKey);
  s.node = static_cast<std::uint32_t>(lua_tointeger(L, -1));
  lua_pop(L, 1);
  return true;
}

// Its elements, less those the script removed from the end, plus those it added after them (a
// border, as `#` finds one).
lua_Integer length(lua_State* L, int t, const Source& s) {
  lua_Integer n = s.self().size;
  while (n > 0 && s.element(static_cast<std::uint32_t>(n)).taken) {
    bool present = lua_rawgeti(L, t, n) != LUA_TNIL;
    lua_pop(L, 1);
    if (present) break;
    --n;
  }
  if (n < static_cast<lua_Integer>(s.self().size)) return n;
  while (true) {
    bool present = lua_rawgeti(L, t, n + 1) != LUA_TNIL;
    lua_pop(L, 1);
    if (!present) return n;
    ++n;
  }
}

bool hidden_key(lua_State* L, int key) {
  const void* p = lua_touserdata(L, key);  // null for anything but a userdata
  return p == &kBoxKey || p == &kNodeKey;
}

bool is_null(const void* p) { return p == &kNullSentinel; }

}  // namespace lazy

namespace {

using nlohmann::json;
using json_index::Box;
using json_index::Kind;
using json_index::Node;
using lazy::Source;

// ---- Lazy tables ----------------------------------------------------------------------------
// A lazy table holds two hidden entries: the document's box, and the number of its own node. A
// value becomes a Lua value when the script first reads it, and is then stored in the table, so
// the next read is a plain one; its node is marked taken, so a value the script removes does not
// come back from the document. Array elements are found by number (the box lists them), object
// members by a scan of the keys; an object of more than 32 members is filled whole on first use,
// so that reading all its fields is not quadratic. Two hidden entries and no object of their own:
// a userdata per table cost more than the fields a hook reads.
constexpr std::uint32_t kMaxScannedMembers = 32;
constexpr std::uint32_t kPresizedElements = 16;

// Pushes a table reading node `i` of a document; the document's box is at the top of the stack,
// and is taken from there.
void new_lazy(lua_State* L, const Node& n, std::uint32_t i) {
  // A short array gets room for all its elements (its first read would otherwise grow the table);
  // a long one grows as they are read (sized for all, `#` on a long list would cost 16 bytes an
  // element).
  if (n.kind == Kind::kArray)
    lua_createtable(L, n.size <= kPresizedElements ? static_cast<int>(n.size) : 0, 2);
  else
    lua_createtable(L, 0, static_cast<int>(std::min(n.size, kMaxScannedMembers) + 2));
  lua_rotate(L, -2, 1);  // box, table -> table, box
  lua_rawsetp(L, -2, &kBoxKey);
  lua_pushinteger(L, i);
  lua_rawsetp(L, -2, &kNodeKey);
  set_metatable_at(L, extras_of(L).lazy_meta);
}

void push_scalar(lua_State* L, const Node& n, const char* text) {
  switch (n.kind) {
    case Kind::kNull: lua_pushlightuserdata(L, &kNullSentinel); break;
    case Kind::kTrue: lua_pushboolean(L, 1); break;
    case Kind::kFalse: lua_pushboolean(L, 0); break;
    case Kind::kInt: lua_pushinteger(L, std::bit_cast<std::int64_t>(n.value)); break;
    case Kind::kDouble: lua_pushnumber(L, std::bit_cast<double>(n.value)); break;
    case Kind::kString: lua_pushlstring(L, text + n.value, n.size); break;
    case Kind::kArray:
    case Kind::kObject: lua_pushnil(L); break;  // not a scalar
  }
}

// Pushes node `i` of the document of the lazy table at `t`.
void push_node(lua_State* L, int t, const Source& s, std::uint32_t i) {
  const Node& n = s.nodes()[i];
  if (!json_index::is_container(n)) return push_scalar(L, n, s.text());
  lua_rawgetp(L, t, &kBoxKey);
  new_lazy(L, n, i);
}

// Makes the lazy table at `t` a plain one: every value not taken yet goes in, the hidden entries
// come out, and the metatable becomes an array's or none. `s` is not to be used after.
void fill(lua_State* L, int t, const Source& s) {
  const Node& c = s.self();
  bool array = s.array();
  if (array) {
    for (std::uint32_t k = 1; k <= c.size; ++k) {
      if (s.element(k).taken) continue;
      push_node(L, t, s, s.element_node(k));
      lua_rawseti(L, t, k);
    }
  } else {
    s.each_member([&](std::uint32_t key, std::uint32_t value) {
      if (s.nodes()[value].taken) return;
      std::string_view name = s.string(key);
      lua_pushlstring(L, name.data(), name.size());
      push_node(L, t, s, value);
      lua_rawset(L, t);  // a repeated key: the last one wins, as in every JSON reader we feed
    });
  }
  lua_pushnil(L);
  lua_rawsetp(L, t, &kNodeKey);
  lua_pushnil(L);
  lua_rawsetp(L, t, &kBoxKey);  // last: the box stays alive while the table is filled
  if (array)
    lua_rawgeti(L, LUA_REGISTRYINDEX, extras_of(L).array_meta);
  else
    lua_pushnil(L);
  lua_setmetatable(L, t);
}

void fill_if_lazy(lua_State* L, int t) {
  Source s;
  if (lazy::source(L, t, s)) fill(L, t, s);
}

// An object's members named `key` (a key may repeat): calls `each` with the number of each one's
// value node; returns the last of them (the one a reader keeps), 0 for none.
template <class Each>
std::uint32_t members_named(const Source& s, std::string_view key, Each&& each) {
  std::uint32_t found = 0;
  s.each_member([&](std::uint32_t k, std::uint32_t value) {
    if (s.string(k) != key) return;
    each(value);
    found = value;
  });
  return found;
}

// The array element a key names (1..size), 0 for none: numbers only (t["1"] is no element).
std::uint32_t element_named(lua_State* L, int key, const Source& s) {
  if (lua_type(L, key) != LUA_TNUMBER) return 0;
  int is_integer = 0;
  lua_Integer k = lua_tointegerx(L, key, &is_integer);
  return is_integer && k >= 1 && k <= s.self().size ? static_cast<std::uint32_t>(k) : 0;
}

std::string_view string_at(lua_State* L, int index) {
  std::size_t len = 0;
  const char* text = lua_tolstring(L, index, &len);
  return {text, len};
}

// Marks what the key at `key` names as handed to the script: an array's element, or every member
// of an object of that name (so the earlier ones of a repeated key do not surface either).
void take(lua_State* L, int key, const Source& s) {
  if (s.array()) {
    if (std::uint32_t k = element_named(L, key, s)) s.element(k).taken = true;
  } else if (lua_type(L, key) == LUA_TSTRING) {
    members_named(s, string_at(L, key), [&](std::uint32_t value) { s.nodes()[value].taken = true; });
  }
}

// __index(t, k): Lua calls it only for a key the table does not hold raw.
int lazy_index(lua_State* L) {
  Source s;
  if (!lazy::source(L, 1, s)) return 0;
  std::uint32_t value = 0;
  if (s.array()) {
    if (std::uint32_t k = element_named(L, 2, s)) value = s.element_node(k);
  } else if (s.self().size > kMaxScannedMembers) {
    fill(L, 1, s);
    lua_settop(L, 2);
    lua_rawget(L, 1);
    return 1;
  } else if (lua_type(L, 2) == LUA_TSTRING) {
    value = members_named(s, string_at(L, 2), [](std::uint32_t) {});
  }
  if (!value || s.nodes()[value].taken) return 0;  // none, or removed by the script
  push_node(L, 1, s, value);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -2);
  lua_rawset(L, 1);
  take(L, 2, s);  // only now: a read that ran out of memory can be tried again
  return 1;
}

// __newindex(t, k, v): for a key the table does not hold raw.
int lazy_newindex(lua_State* L) {
  Source s;
  bool lazy = lazy::source(L, 1, s);
  if (lazy && !s.array() && s.self().size > kMaxScannedMembers) {
    fill(L, 1, s);
    lazy = false;
  }
  lua_settop(L, 3);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rawset(L, 1);  // a nil or NaN key fails here, as on any table
  if (lazy) take(L, 2, s);
  return 0;
}

int lazy_len(lua_State* L) {
  Source s;
  if (lazy::source(L, 1, s) && s.array()) {
    lua_pushinteger(L, lazy::length(L, 1, s));
    return 1;
  }
  fill_if_lazy(L, 1);
  lua_pushinteger(L, static_cast<lua_Integer>(lua_rawlen(L, 1)));
  return 1;
}

// The sandbox's next, and what pairs uses on a lazy table (its __pairs).
int sandbox_next(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  fill_if_lazy(L, 1);
  lua_settop(L, 2);
  if (lua_next(L, 1)) return 2;
  lua_pushnil(L);
  return 1;
}

int lazy_pairs(lua_State* L) {
  fill_if_lazy(L, 1);
  lua_pushcfunction(L, sandbox_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

int sandbox_rawget(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  fill_if_lazy(L, 1);
  lua_settop(L, 2);
  lua_rawget(L, 1);
  return 1;
}

int sandbox_rawset(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  luaL_checkany(L, 3);
  fill_if_lazy(L, 1);
  lua_settop(L, 3);
  lua_rawset(L, 1);
  return 1;
}

int sandbox_rawlen(lua_State* L) {
  int t = lua_type(L, 1);
  luaL_argexpected(L, t == LUA_TTABLE || t == LUA_TSTRING, 1, "table or string");
  if (t == LUA_TTABLE) fill_if_lazy(L, 1);
  lua_pushinteger(L, static_cast<lua_Integer>(lua_rawlen(L, 1)));
  return 1;
}

// ---- The document path (plexus.config, plexus.json_decode, on_complete's result) -------------

void push_json_depth(lua_State* L, const json& v, int depth) {
  if (depth > 128) luaL_error(L, "JSON nested deeper than 128 levels");
  luaL_checkstack(L, 4, "JSON too deep");
  switch (v.type()) {
    case json::value_t::null:
      lua_pushlightuserdata(L, &kNullSentinel);
      break;
    case json::value_t::boolean:
      lua_pushboolean(L, v.get<bool>());
      break;
    case json::value_t::number_integer:
      lua_pushinteger(L, v.get<lua_Integer>());
      break;
    case json::value_t::number_unsigned:  // beyond int64 it can only be a float in Lua
      if (v.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
        lua_pushnumber(L, static_cast<double>(v.get<std::uint64_t>()));
      else
        lua_pushinteger(L, v.get<lua_Integer>());
      break;
    case json::value_t::number_float:
      lua_pushnumber(L, v.get<double>());
      break;
    case json::value_t::string: {
      const auto& s = v.get_ref<const std::string&>();
      lua_pushlstring(L, s.data(), s.size());
      break;
    }
    case json::value_t::array: {
      lua_createtable(L, static_cast<int>(v.size()), 0);
      lua_Integer i = 1;
      for (const auto& item : v) {
        push_json_depth(L, item, depth + 1);
        lua_rawseti(L, -2, i++);
      }
      set_metatable_at(L, extras_of(L).array_meta);
      break;
    }
    case json::value_t::object:
      lua_createtable(L, 0, static_cast<int>(v.size()));
      for (const auto& [key, item] : v.items()) {
        push_json_depth(L, item, depth + 1);
        lua_setfield(L, -2, key.c_str());
      }
      break;
    default:
      lua_pushnil(L);
  }
}

}  // namespace

void register_json(lua_State* L, int env) {
  // Neither metatable has a __name: to tostring and error messages a JSON array or a lazy table
  // is a table, as any other.
  lua_newtable(L);
  extras_of(L).array_meta = anchor(L);
  lua_pop(L, 1);
  lua_newtable(L);
  using Named = std::pair<const char*, lua_CFunction>;
  for (auto [event, fn] : {Named{"__index", lazy_index}, Named{"__newindex", lazy_newindex},
                           Named{"__len", lazy_len}, Named{"__pairs", lazy_pairs}}) {
    lua_pushcfunction(L, fn);
    lua_setfield(L, -2, event);
  }
  extras_of(L).lazy_meta = anchor(L);
  lua_pop(L, 1);
  for (auto [name, fn] : {Named{"next", sandbox_next}, Named{"rawget", sandbox_rawget},
                          Named{"rawset", sandbox_rawset}, Named{"rawlen", sandbox_rawlen}}) {
    lua_pushcfunction(L, fn);
    lua_setfield(L, env, name);
  }
}

void push_null(lua_State* L) { lua_pushlightuserdata(L, &kNullSentinel); }

void push_json(lua_State* L, const json& v) { push_json_depth(L, v, 0); }

bool push_json_text(lua_State* L, std::string_view text) {
  thread_local json_index::Builder index;
  if (!index.build(text)) return false;
  const Node& root = index.nodes[0];
  if (!json_index::is_container(root)) {
    push_scalar(L, root, index.text.data());  // a scalar needs no box
    return true;
  }
  Box* box = index.write(lua_newuserdatauv(L, index.box_bytes(), 0));
  new_lazy(L, box->node_array()[0], 0);
  return true;
}

void fill_lazy_table(lua_State* L, int index) {
  if (lua_type(L, index) == LUA_TTABLE) fill_if_lazy(L, lua_absindex(L, index));
}

}  // namespace plexus::lua
