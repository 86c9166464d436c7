#include "plugins/lua/json_index.hpp"

#include <bit>
#include <cstring>
#include <limits>

#include "common/json_text.hpp"

namespace plexus::lua::json_index {
namespace {

void add_string(Builder& out, std::string_view s) {
  out.nodes.push_back({Kind::kString, false, static_cast<std::uint32_t>(s.size()), {out.text.size()}});
  out.text.append(s);
}

void add_number(Builder& out, Kind kind, std::uint64_t bits) { out.nodes.push_back({kind, false, 0, {bits}}); }

// Recursion as deep as simdjson's own limit (JsonText::kMaxDepth levels), a few words a level.
void add_element(simdjson::dom::element v, Builder& out) {
  using Type = simdjson::dom::element_type;
  switch (v.type()) {
    case Type::NULL_VALUE: out.nodes.push_back({Kind::kNull, false, 0, {0}}); break;
    case Type::BOOL: out.nodes.push_back({bool(v) ? Kind::kTrue : Kind::kFalse, false, 0, {0}}); break;
    case Type::INT64: add_number(out, Kind::kInt, std::bit_cast<std::uint64_t>(int64_t(v))); break;
    case Type::UINT64:  // beyond int64 it can only be a float in Lua
      add_number(out, Kind::kDouble, std::bit_cast<std::uint64_t>(static_cast<double>(uint64_t(v))));
      break;
    case Type::DOUBLE: add_number(out, Kind::kDouble, std::bit_cast<std::uint64_t>(double(v))); break;
    case Type::STRING: add_string(out, std::string_view(v)); break;
    case Type::ARRAY: {
      std::size_t at = out.nodes.size();
      out.nodes.push_back({Kind::kArray, false, 0, {0}});
      std::size_t base = out.pending.size();
      for (simdjson::dom::element item : simdjson::dom::array(v)) {
        out.pending.push_back(static_cast<std::uint32_t>(out.nodes.size()));
        add_element(item, out);
      }
      auto first = static_cast<std::uint32_t>(out.elements.size());
      out.elements.insert(out.elements.end(), out.pending.begin() + static_cast<std::ptrdiff_t>(base), out.pending.end());
      out.nodes[at].size = static_cast<std::uint32_t>(out.pending.size() - base);
      out.nodes[at].span = {static_cast<std::uint32_t>(out.nodes.size()), first};
      out.pending.resize(base);
      break;
    }
    case Type::OBJECT: {
      std::size_t at = out.nodes.size();
      out.nodes.push_back({Kind::kObject, false, 0, {0}});
      std::uint32_t n = 0;
      for (auto [key, item] : simdjson::dom::object(v)) {
        add_string(out, key);
        add_element(item, out);
        ++n;
      }
      out.nodes[at].size = n;
      out.nodes[at].span = {static_cast<std::uint32_t>(out.nodes.size()), 0};
      break;
    }
  }
}

}  // namespace

bool Builder::build(std::string_view json) {
  nodes.clear();
  elements.clear();
  text.clear();
  pending.clear();
  JsonText parsed(json);
  if (parsed.error() != simdjson::SUCCESS) return false;
  add_element(parsed.root(), *this);
  // Node numbers are 32 bits: far past any body the router accepts.
  return nodes.size() < std::numeric_limits<std::uint32_t>::max();
}

Box* Builder::write(void* memory) const {
  auto* box = static_cast<Box*>(memory);
  box->nodes = nodes.size();
  box->elements = elements.size();
  std::memcpy(box->node_array(), nodes.data(), nodes.size() * sizeof(Node));
  std::memcpy(box->element_array(), elements.data(), elements.size() * sizeof(std::uint32_t));
  std::memcpy(const_cast<char*>(box->text()), text.data(), text.size());
  return box;
}

}  // namespace plexus::lua::json_index
