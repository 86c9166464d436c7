#pragma once
// A relay that builds OpenAI chunks itself (adapters translating another protocol: ollama,
// anthropic): one id, model and creation time per answer, and the chunk shapes clients expect.
#include <nlohmann/json.hpp>

#include <chrono>
#include <string>

#include "common/relay_base.hpp"

namespace plexus {

class ChunkingRelay : public RelayBase {
 protected:
  using json = nlohmann::json;

  ChunkingRelay(std::string upstream_name, const ChatRequest& request, ResponseSink& sink)
      : RelayBase(std::move(upstream_name), sink),
        stream_(request.stream),
        include_usage_(request.include_usage),
        model_(request.model),
        id_("chatcmpl-" + request.request_id),
        created_(std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch()).count()) {}

  json usage_json() const {
    return {{"prompt_tokens", usage_.prompt_tokens}, {"completion_tokens", usage_.completion_tokens},
            {"total_tokens", usage_.prompt_tokens + usage_.completion_tokens}};
  }
  json chunk(json delta, json finish_reason) const {
    return {{"id", id_}, {"object", "chat.completion.chunk"}, {"created", created_}, {"model", model_},
            {"choices", json::array({{{"index", 0}, {"delta", std::move(delta)}, {"logprobs", nullptr},
                                      {"finish_reason", std::move(finish_reason)}}})}};
  }
  void emit(const json& c) {
    sink_->on_chunk(c.dump(-1, ' ', false, json::error_handler_t::replace));
    emitted_ = true;
  }
  // The end of a stream: the finish chunk, then the usage chunk when the client asked for it.
  void emit_finish(const std::string& finish_reason) {
    emit(chunk(json::object(), finish_reason));
    if (include_usage_)
      emit({{"id", id_}, {"object", "chat.completion.chunk"}, {"created", created_}, {"model", model_},
            {"choices", json::array()}, {"usage", usage_json()}});
  }
  // A whole answer: one chat.completion with `message`.
  void deliver_whole(json message, const std::string& finish_reason) {
    json body = {{"id", id_}, {"object", "chat.completion"}, {"created", created_}, {"model", model_},
                 {"choices", json::array({{{"index", 0}, {"message", std::move(message)}, {"logprobs", nullptr},
                                           {"finish_reason", finish_reason}}})},
                 {"usage", usage_json()}};
    sink_->on_body(body.dump(-1, ' ', false, json::error_handler_t::replace));
  }

  bool stream_, include_usage_;
  std::string model_, id_;
  std::int64_t created_;
};

}  // namespace plexus
