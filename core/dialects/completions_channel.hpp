#pragma once
// The answer to POST /v1/completions: a chat completion as a text_completion (choices[].text),
// chat chunks as text_completion chunks ("data: {...}" events, then [DONE], as OpenAI streams
// them), errors in OpenAI's shape.
#include <nlohmann/json.hpp>

#include <string>

#include "dialects/sse_channel.hpp"
#include "dialects/translated.hpp"

namespace plexus::dialects {

class CompletionsChannel final : public SseChannel {
 public:
  CompletionsChannel(std::shared_ptr<Responder> responder, nlohmann::json echo);

  void begin_stream(const Headers& headers) override { open_stream(headers); }
  void end_stream(const std::string* error_json) override;

 private:
  void whole(int status, const Headers& headers, const std::string& body) override;
  void chunk(std::string_view chunk_json) override;

  nlohmann::json completion(std::string text, nlohmann::json finish_reason) const;

  nlohmann::json echo_;
  std::string id_;
  std::int64_t created_;
};

}  // namespace plexus::dialects
