#pragma once
// What the JSON encoder (lua_json_encode.cc) reads of the lazy tables hooks receive
// (lua_json.cc): a table's place in its document, and its length as `#` gives it.
#include <lua.hpp>

#include <cstdint>
#include <string_view>

#include "plugins/lua/json_index.hpp"

namespace plexus::lua::lazy {

struct Source {
  json_index::Box* box = nullptr;  // kept alive by the table
  std::uint32_t node = 0;          // the table's own
  json_index::Node* nodes() const { return box->node_array(); }
  json_index::Node& self() const { return nodes()[node]; }
  const char* text() const { return box->text(); }
  bool array() const { return self().kind == json_index::Kind::kArray; }
  // Element `k` (1-based) of an array.
  json_index::Node& element(std::uint32_t k) const { return nodes()[element_node(k)]; }
  std::uint32_t element_node(std::uint32_t k) const { return box->element_array()[self().span.first + k - 1]; }
  // The text of string node `i` (an object's keys are string nodes).
  std::string_view string(std::uint32_t i) const { return {text() + nodes()[i].value, nodes()[i].size}; }
  // Calls f(key, value) with the node numbers of each of this object's members.
  template <class F>
  void each_member(F&& f) const { json_index::each_member(nodes(), node, f); }
};

// Reads the source of the table at `t` (an absolute index); false when it is not lazy.
bool source(lua_State* L, int t, Source& s);
// The length `#` gives a lazy array: what the same table built whole would give.
lua_Integer length(lua_State* L, int t, const Source& s);
// Whether the key at `key` is one of a lazy table's hidden entries.
bool hidden_key(lua_State* L, int key);
// Whether a light userdata is plexus.null.
bool is_null(const void* p);

}  // namespace plexus::lua::lazy
