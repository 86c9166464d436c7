// Differential: the lines from the whole input must equal those from any split of it.
#include <cstdint>
#include <string>
#include <vector>

#include "common/line_splitter.hpp"

static std::vector<std::string> lines(std::string_view data, size_t cut) {
  std::vector<std::string> out;
  plexus::LineSplitter s(1 << 16);
  auto sink = [&](std::string_view l) { out.emplace_back(l); };
  if (!s.feed(data.substr(0, cut), sink) || !s.feed(data.substr(cut), sink)) return {"<overflow>"};
  return out;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size < 1) return 0;
  std::string_view data(reinterpret_cast<const char*>(bytes) + 1, size - 1);
  size_t cut = data.empty() ? 0 : bytes[0] % (data.size() + 1);
  if (lines(data, cut) != lines(data, 0)) __builtin_trap();
  return 0;
}
