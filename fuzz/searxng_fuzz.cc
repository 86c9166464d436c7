// A search backend's answer is outside input: any bytes give sources within bounds or a reason.
#include <cstdint>
#include <string>
#include <variant>

#include "search_backend.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  static auto backend = plexus::web::make_backend({"searxng", "http://127.0.0.1:1", "", "", 40});
  std::string_view body(reinterpret_cast<const char*>(bytes), size);
  auto parsed = backend->parse(200, body, 5);
  if (auto* sources = std::get_if<std::vector<plexus::web::Source>>(&parsed)) {
    if (sources->size() > 5) __builtin_trap();
    for (const auto& s : *sources)
      if (s.content.size() > 40 + 3 || s.title.empty()) __builtin_trap();  // cut, plus "…"
  }
  (void)backend->request(body);  // any query text makes a URL
  return 0;
}
