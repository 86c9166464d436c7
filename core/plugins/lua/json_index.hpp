#pragma once
// A parsed JSON document flattened into one block a Lua state owns (lua_json.hpp): nodes in
// document order, each container's members after it (an object's as key, value), the node
// numbers of every array's elements, then the text of every string. Lua memory, so the state's
// cap counts it and the collector frees it with the last table that reads from it; simdjson's own
// document would need a finalizer and would sit outside the cap.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace plexus::lua::json_index {

enum class Kind : std::uint8_t { kNull, kTrue, kFalse, kInt, kDouble, kString, kArray, kObject };

struct Node {
  Kind kind;
  // Set once a lazy table has handed this value to the script (an element, or an object member's
  // value): the table holds it raw from then on, or the script removed it, so the document must
  // not give it again.
  bool taken = false;
  std::uint32_t size;  // a string's bytes, an array's elements, an object's members
  struct Span {
    std::uint32_t end;    // the number of the node after the container's last one
    std::uint32_t first;  // an array's: where its elements' node numbers start
  };
  union {
    std::uint64_t value;  // a string's offset in the text; an integer's or a double's bits
    Span span;            // a container's
  };
};
static_assert(sizeof(Node) == 16);

inline bool is_container(const Node& n) { return n.kind == Kind::kArray || n.kind == Kind::kObject; }

// The block's layout: this header, Node[nodes], std::uint32_t[elements], then the text.
struct Box {
  std::uint64_t nodes;
  std::uint64_t elements;
  Node* node_array() { return reinterpret_cast<Node*>(this + 1); }
  std::uint32_t* element_array() { return reinterpret_cast<std::uint32_t*>(node_array() + nodes); }
  const char* text() { return reinterpret_cast<const char*>(element_array() + elements); }
};

// Where an index is built, on the thread's reusable buffers, before anything is allocated in a
// state (a Lua error would skip destructors).
struct Builder {
  std::vector<Node> nodes;
  std::vector<std::uint32_t> elements;
  std::string text;
  std::vector<std::uint32_t> pending;  // the elements of the arrays being built, innermost last

  // Parses `text` into the buffers; false when it is not JSON (or has more than 2^32 nodes).
  bool build(std::string_view json);
  std::size_t box_bytes() const {
    return sizeof(Box) + nodes.size() * sizeof(Node) + elements.size() * sizeof(std::uint32_t) + text.size();
  }
  // Writes the block into `memory` (box_bytes() of it).
  Box* write(void* memory) const;
};

// The number of the node after node `i` and everything in it.
inline std::uint32_t after(const Node* nodes, std::uint32_t i) { return is_container(nodes[i]) ? nodes[i].span.end : i + 1; }

// Calls f(key, value) with the node numbers of each member of the object at node `object`, in
// document order.
template <class F>
void each_member(const Node* nodes, std::uint32_t object, F&& f) {
  for (std::uint32_t k = object + 1; k < nodes[object].span.end; k = after(nodes, k + 1)) f(k, k + 1);
}

}  // namespace plexus::lua::json_index
