#pragma once
// The answer to POST /v1/responses: a chat completion as a Responses API response (output items,
// output_text, usage in input/output tokens), and a chat stream as its typed events:
// response.created, response.in_progress, response.output_item.added, response.content_part.added,
// response.output_text.delta (and .annotation.added), response.function_call_arguments.delta,
// the matching .done events, then response.completed (or response.incomplete at the token limit).
// A stream that fails after its first event ends with an `error` event and response.failed.
#include <nlohmann/json.hpp>

#include <string>

#include "dialects/sse_channel.hpp"
#include "dialects/translated.hpp"

namespace plexus::dialects {

class ResponsesChannel final : public SseChannel {
 public:
  // `echo`: the request's fields the response repeats (translate_responses_request).
  ResponsesChannel(std::shared_ptr<Responder> responder, nlohmann::json echo);

  void begin_stream(const Headers& headers) override;
  void end_stream(const std::string* error_json) override;

 private:
  void whole(int status, const Headers& headers, const std::string& body) override;
  void chunk(std::string_view chunk_json) override;

  nlohmann::json response(const char* status) const;
  void emit(const char* type, nlohmann::json payload);
  void open_message();
  void close_message(const char* status = "completed");
  void open_call(int chat_index, const std::string& call_id, const std::string& name);
  void close_call(const char* status = "completed");

  nlohmann::json echo_;
  std::string id_;
  std::int64_t created_;
  std::string model_;
  nlohmann::json output_ = nlohmann::json::array();  // finished items
  nlohmann::json usage_;
  std::string finish_reason_;
  std::int64_t sequence_ = 0;
  // The message item being streamed.
  bool message_open_ = false;
  std::string message_id_;
  int message_index_ = 0;
  std::string text_;
  nlohmann::json annotations_ = nlohmann::json::array();
  // The function call item being streamed.
  bool call_open_ = false;
  int call_chat_index_ = -1;  // its index among the chat chunks' tool_calls
  int call_index_ = 0;
  std::string call_item_id_, call_id_, call_name_, call_args_;
};

}  // namespace plexus::dialects
