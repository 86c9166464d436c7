#include "common/openai_shapes.hpp"

#include <chrono>

namespace plexus::openai {
namespace {

json head(const Answer& a, const char* object) {
  json j = {{"id", a.id}, {"object", object}, {"created", a.created}, {"model", a.model}};
  if (!a.system_fingerprint.empty()) j["system_fingerprint"] = a.system_fingerprint;
  return j;
}

}  // namespace

Answer new_answer(const std::string& request_id, const std::string& model) {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return {"chatcmpl-" + request_id, model, std::chrono::duration_cast<std::chrono::seconds>(now).count(), ""};
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
