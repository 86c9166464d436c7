// Request bodies of the APIs translated at the edge (responses, messages, legacy completions,
// embeddings): the first byte picks the API, the rest is the body. Always a 400 with a message, or
// a translation that is a valid request of the one internal shape.
#include <nlohmann/json.hpp>

#include <cstdint>

#include "dialects/completions_request.hpp"
#include "dialects/messages_request.hpp"
#include "dialects/responses_request.hpp"
#include "gateway/chat_request.hpp"
#include "gateway/embeddings_request.hpp"

namespace {

void check_error(const plexus::Error& e) {
  if (e.status != 400 || e.message.empty()) __builtin_trap();
}

void check_translation(const std::variant<plexus::dialects::Translated, plexus::Error>& translated) {
  if (auto* e = std::get_if<plexus::Error>(&translated)) return check_error(*e);
  const auto& t = std::get<plexus::dialects::Translated>(translated);
  auto doc = nlohmann::json::parse(t.chat_body, nullptr, false);
  if (!doc.is_object() || !doc["model"].is_string() || !doc["messages"].is_array()) __builtin_trap();
  // The chat validator decides the rest: a 400 of its own, never a crash.
  auto parsed = plexus::parse_chat_request(t.chat_body);
  if (auto* e = std::get_if<plexus::Error>(&parsed)) check_error(*e);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size == 0) return 0;
  std::string_view body(reinterpret_cast<const char*>(bytes) + 1, size - 1);
  switch (bytes[0] % 4) {
    case 0: check_translation(plexus::dialects::translate_responses_request(body)); break;
    case 1: check_translation(plexus::dialects::translate_messages_request(body)); break;
    case 2: check_translation(plexus::dialects::translate_completions_request(body)); break;
    default: {
      auto parsed = plexus::parse_embeddings_request(body);
      if (auto* e = std::get_if<plexus::Error>(&parsed)) {
        check_error(*e);
        break;
      }
      auto up = plexus::to_upstream_embeddings(std::get<plexus::ParsedChat>(parsed), "renamed", "req_fuzz");
      auto doc = nlohmann::json::parse(up.body, nullptr, false);
      if (!doc.is_object() || doc["model"] != "renamed" || doc["encoding_format"] != "float") __builtin_trap();
    }
  }
  return 0;
}
