#pragma once
// The base of the channels that answer in another API's shape: named SSE events
// ("event: NAME\ndata: JSON\n\n") straight to the request's Responder, with its flow control.
#include <memory>
#include <string_view>

#include "gateway/exchange.hpp"
#include "server/connection.hpp"

namespace plexus::dialects {

class SseChannel : public ClientChannel {
 public:
  explicit SseChannel(std::shared_ptr<Responder> responder) : r_(std::move(responder)) {}
  ~SseChannel() override { r_->abandon(); }  // an exchange that ends without an answer: close

  // What nodes send is outside input: an answer or a chunk the translation cannot read (a field
  // of the wrong type) never escapes as an exception. A whole answer becomes a 502; a chunk is
  // left out, and logged.
  void send_whole(int status, const Headers& headers, std::string body) final;
  void send_event(std::string_view chunk_json) final;

  std::size_t queued_bytes() const override { return r_->queued_bytes(); }
  void notify_when_drained(std::function<void()> on_drained) override { r_->when_drained(std::move(on_drained)); }

 protected:
  // The translation proper: `body` is a chat.completion (status 200) or an OpenAI error body.
  virtual void whole(int status, const Headers& headers, const std::string& body) = 0;
  virtual void chunk(std::string_view chunk_json) = 0;

  void send_json(int status, const Headers& headers, std::string_view body);
  void open_stream(const Headers& headers);
  void event(std::string_view name, std::string_view json);
  void event_data(std::string_view data);  // "data: ...\n\n", no name (chat's own framing)
  void close();

 private:
  std::shared_ptr<Responder> r_;
};

}  // namespace plexus::dialects
