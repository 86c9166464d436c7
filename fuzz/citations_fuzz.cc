// The web plugin's citation scanner reads what a node streams (untrusted): fed whole or split at
// a point the input chooses, it must find the same citations, each inside the text it scanned.
#include <cstdint>
#include <string>
#include <vector>

#include "citations.hpp"

using plexus::web::Citation;

static std::vector<Citation> scan(const std::vector<plexus::web::Source>& sources, std::string_view text, size_t cut) {
  plexus::web::CitationScanner scanner(sources);
  std::vector<Citation> out;
  for (auto piece : {text.substr(0, cut), text.substr(cut)})
    for (const auto& c : scanner.feed(piece)) out.push_back(c);
  return out;
}

static size_t code_points(std::string_view text) {
  size_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size < 1) return 0;
  std::string_view text(reinterpret_cast<const char*>(bytes) + 1, size - 1);
  std::vector<plexus::web::Source> sources = {{"One", "https://one.example/a", "x"}, {"Two", "https://two.example/", "y"}};
  auto whole = scan(sources, text, 0);
  auto split = scan(sources, text, bytes[0] % (text.size() + 1));
  if (whole.size() != split.size()) __builtin_trap();
  for (size_t i = 0; i < whole.size(); ++i) {
    const auto& a = whole[i];
    const auto& b = split[i];
    if (a.source != b.source || a.start != b.start || a.end != b.end) __builtin_trap();
    if (a.source >= sources.size() || a.start >= a.end) __builtin_trap();
    // Every index is within the text (invalid bytes count as one replacement character each, so
    // the bound is the byte count).
    if (a.end > text.size()) __builtin_trap();
  }
  (void)code_points;
  return 0;
}
