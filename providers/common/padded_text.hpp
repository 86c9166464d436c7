#pragma once
// Text kept with spare room after it for simdjson, which reads up to 64 bytes past a document's
// end: a request body or a whole answer built this way is parsed where it lies, not copied first
// (JsonText's `readable_after`). Apart from json_text.hpp so that appending needs no simdjson.
#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

namespace plexus {

inline constexpr std::size_t kJsonPadding = 64;  // simdjson::SIMDJSON_PADDING (checked in json_text.cc)

// Appends `bytes`, growing `text` (by doubling) so that kJsonPadding spare bytes stay after it.
inline void append_padded(std::string& text, std::string_view bytes) {
  std::size_t wanted = text.size() + bytes.size() + kJsonPadding;
  if (text.capacity() < wanted) text.reserve(std::max(wanted, 2 * text.capacity()));
  text.append(bytes);
}

}  // namespace plexus
