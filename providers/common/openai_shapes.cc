#include "common/openai_shapes.hpp"

#include <chrono>
#include <random>

namespace plexus::openai {
namespace {

json head(const Answer& a, const char* object) {
  json j = {{"id", a.id}, {"object", object}, {"created", a.created}, {"model", a.model}};
  if (!a.system_fingerprint.empty()) j["system_fingerprint"] = a.system_fingerprint;
  return j;
}

}  // namespace

std::string random_id(const char* prefix, int hex_digits) {
  // Unique, not secret: ids name answers and their items, they grant nothing.
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string id = prefix;
  std::uint64_t bits = 0;
  for (int i = 0; i < hex_digits; ++i, bits >>= 4) {
    if (i % 16 == 0) bits = rng();
    id += hex[bits & 15];
  }
  return id;
}

Answer new_answer(const std::string& request_id, const std::string& model) {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  // The request id names the answer in logs; the suffix keeps it unique when a client sends the
  // same X-Request-Id twice.
  return {random_id(("chatcmpl-" + request_id + "-").c_str(), 8), model,
          std::chrono::duration_cast<std::chrono::seconds>(now).count(), ""};
}

json usage(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

json chunk(const Answer& a, json delta, json finish_reason) {
  json j = head(a, "chat.completion.chunk");
  j["choices"] = json::array({{{"index", 0}, {"delta", std::move(delta)}, {"logprobs", nullptr},
                               {"finish_reason", std::move(finish_reason)}}});
  return j;
}

json empty_chunk(const Answer& a) {
  json j = head(a, "chat.completion.chunk");
  j["choices"] = json::array();
  return j;
}

json usage_chunk(const Answer& a, const Usage& u) {
  json j = empty_chunk(a);
  j["usage"] = usage(u);
  return j;
}

json completion(const Answer& a, json message, const std::string& finish_reason, const Usage& u) {
  json j = head(a, "chat.completion");
  j["choices"] = json::array({{{"index", 0}, {"message", std::move(message)}, {"logprobs", nullptr},
                               {"finish_reason", finish_reason}}});
  j["usage"] = usage(u);
  return j;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace plexus::openai
