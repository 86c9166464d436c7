#pragma once
// A relay that builds OpenAI chunks itself (adapters translating another protocol: ollama,
// anthropic): one id, model and creation time per answer, and the chunk shapes clients expect.
#include <nlohmann/json.hpp>

#include <string>

#include "common/openai_shapes.hpp"
#include "common/relay_base.hpp"

namespace plexus {

class ChunkingRelay : public RelayBase {
 protected:
  using json = nlohmann::json;

  ChunkingRelay(std::string upstream_name, const ChatRequest& request, ResponseSink& sink)
      : RelayBase(std::move(upstream_name), sink),
        stream_(request.stream),
        include_usage_(request.include_usage),
        answer_(openai::new_answer(request.request_id, request.model)) {}

  json chunk(json delta, json finish_reason) const {
    return openai::chunk(answer_, std::move(delta), std::move(finish_reason));
  }
  void emit(const json& c) {
    sink_->on_chunk(openai::dump(c));
    emitted_ = true;
  }
  // The end of a stream: the finish chunk, then the usage chunk when the client asked for it.
  // `stop_string`: the client's stop sequence that ended the answer, when the backend says (see
  // with_stop_string).
  void emit_finish(const std::string& finish_reason, const json& stop_string = nullptr) {
    emit(with_stop_string(chunk(json::object(), finish_reason), stop_string));
    if (include_usage_) emit(openai::usage_chunk(answer_, usage_));
  }
  // A whole answer: one chat.completion with `message`.
  void deliver_whole(json message, const std::string& finish_reason, const json& stop_string = nullptr) {
    sink_->on_body(openai::dump(with_stop_string(openai::completion(answer_, std::move(message), finish_reason, usage_), stop_string)));
  }
  // The stop sequence goes out as vLLM sends it ("stop_reason" beside finish_reason "stop"), which
  // the Messages API reads back as its stop_sequence.
  static json with_stop_string(json answer, const json& stop_string) {
    if (stop_string.is_string()) answer["choices"][0]["stop_reason"] = stop_string;
    return answer;
  }

  bool stream_, include_usage_;
  openai::Answer answer_;
};

}  // namespace plexus
