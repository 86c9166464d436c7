// Differential: the events from feeding the input whole must equal those from feeding it split
// at a point the input chooses, and byte by byte. Upstream bytes are untrusted.
#include <cstdint>
#include <string>
#include <vector>

#include "common/sse_parser.hpp"

using Events = std::vector<std::pair<std::string, std::string>>;

static Events parse(std::string_view data, const std::vector<size_t>& cuts) {
  Events out;
  plexus::SseParser p(1 << 16);
  auto sink = [&](std::string_view e, std::string_view d) { out.emplace_back(e, d); };
  size_t at = 0;
  for (size_t cut : cuts) {
    if (!p.feed(data.substr(at, cut - at), sink)) return {{"<overflow>", ""}};
    at = cut;
  }
  if (!p.feed(data.substr(at), sink)) return {{"<overflow>", ""}};
  return out;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size < 1) return 0;
  std::string_view data(reinterpret_cast<const char*>(bytes) + 1, size - 1);
  Events whole = parse(data, {});
  size_t cut = data.empty() ? 0 : bytes[0] % (data.size() + 1);
  if (parse(data, {cut}) != whole) __builtin_trap();
  if (data.size() < 512) {
    std::vector<size_t> every;
    for (size_t i = 1; i < data.size(); ++i) every.push_back(i);
    if (parse(data, every) != whole) __builtin_trap();
  }
  return 0;
}
