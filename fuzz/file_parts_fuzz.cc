// The file-parser plugin's request side reads client input: a chat body whose file parts carry
// data URLs. The first byte picks the shape: the input as the whole body, or as the file_data of
// one file part (so base64, data URL and PDF handling are reached). Any input: a rewrite or an
// error, never a crash.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "file_parts.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size < 1) return 0;
  static plexus::file_parser::TextCache cache(16, 1 << 20);
  plexus::file_parser::Limits limits;
  limits.max_file_bytes = 1 << 20;
  limits.pdf.max_pages = 20;
  std::string input(reinterpret_cast<const char*>(bytes) + 1, size - 1);
  std::string body;
  if (bytes[0] & 1) {
    body = input;
  } else {
    nlohmann::json part = {{"type", "file"}, {"file", {{"filename", "f.pdf"}, {"file_data", input}}}};
    if (bytes[0] & 2) part["file"]["file_data"] = "data:application/pdf;base64," + input;
    nlohmann::json doc = {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", {part}}}}}};
    body = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  auto out = plexus::file_parser::replace_file_parts(body, limits, cache, "file-parser");
  if (auto* error = std::get_if<plexus::Error>(&out))
    if (error->status != 400 || error->param.empty()) __builtin_trap();
  return 0;
}
