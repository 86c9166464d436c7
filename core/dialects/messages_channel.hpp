#pragma once
// The answer to POST /v1/messages in Anthropic's shapes: a chat completion as a message (text
// and tool_use blocks, stop_reason, usage), a chat stream as message_start, content_block_start /
// _delta (text_delta, input_json_delta) / _stop, message_delta (stop_reason, usage) and
// message_stop; errors as {"type": "error", "error": {"type", "message"}}, mid-stream as an
// `error` event.
#include <nlohmann/json.hpp>

#include <string>

#include "dialects/sse_channel.hpp"
#include "dialects/translated.hpp"

namespace plexus::dialects {

// An OpenAI error body as Anthropic's, its type from the HTTP status.
std::string anthropic_error_body(const std::string& openai_error_json, int status, const std::string& request_id);

class MessagesChannel final : public SseChannel {
 public:
  MessagesChannel(std::shared_ptr<Responder> responder, nlohmann::json echo, std::string request_id);

  void begin_stream(const Headers& headers) override;
  void end_stream(const std::string* error_json) override;

 private:
  void whole(int status, const Headers& headers, const std::string& body) override;
  void chunk(std::string_view chunk_json) override;

  void emit(const char* type, nlohmann::json payload);
  void open_block(nlohmann::json block);
  void close_block();

  nlohmann::json echo_;
  std::string id_;
  std::string request_id_;
  nlohmann::json usage_;  // the chat usage chunk's, in Anthropic's words
  std::string finish_reason_ = "stop";
  nlohmann::json stop_sequence_;  // the client's stop sequence that ended the answer, when the backend says
  int block_index_ = 0;
  bool block_open_ = false;
  bool text_block_ = false;   // the open block is text
  int tool_chat_index_ = -1;  // the open block is this chat tool call's
};

}  // namespace plexus::dialects
