#pragma once
// An Exchange's ClientChannel over the Responder of its request: chat completions as they are,
// chunks as SSE data events in HTTP chunks, ended by [DONE].
#include <memory>

#include "gateway/exchange.hpp"
#include "server/connection.hpp"

namespace plexus {

class ResponderChannel final : public ClientChannel {
 public:
  explicit ResponderChannel(std::shared_ptr<Responder> responder) : r_(std::move(responder)) {}
  // An exchange that ends without finishing its response (a bug) leaves the connection unusable:
  // close it rather than let the next response follow a half-written one.
  ~ResponderChannel() override { r_->abandon(); }

  void send_whole(int status, const Headers& headers, std::string body) override;
  void begin_stream(const Headers& headers) override;
  void send_event(std::string_view chunk_json) override;
  void end_stream(const std::string* error_json) override;
  std::size_t queued_bytes() const override { return r_->queued_bytes(); }
  void notify_when_drained(std::function<void()> on_drained) override {
    r_->when_drained(std::move(on_drained));
  }

 private:
  std::shared_ptr<Responder> r_;
};

}  // namespace plexus
