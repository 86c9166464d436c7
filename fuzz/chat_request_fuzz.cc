// Any request body: a clear error or a valid request whose upstream bodies are valid JSON.
#include <nlohmann/json.hpp>

#include <cstdint>

#include "gateway/chat_request.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(bytes), size);
  auto parsed = plexus::parse_chat_request(body);
  if (auto* error = std::get_if<plexus::Error>(&parsed)) {
    if (error->status != 400 || error->message.empty()) __builtin_trap();
    return 0;
  }
  const auto& chat = std::get<plexus::ParsedChat>(parsed);
  for (const std::string& model : {chat.model, std::string("renamed")}) {
    auto up = plexus::to_upstream_request(chat, model, "req_fuzz");
    auto doc = nlohmann::json::parse(up.body, nullptr, false);
    if (!doc.is_object() || doc["model"] != model) __builtin_trap();
    if (chat.stream && doc["stream_options"]["include_usage"] != true) __builtin_trap();
  }
  return 0;
}
