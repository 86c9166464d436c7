#pragma once
// What every HTTP adapter's response handler shares: the sink it drives, the HTTP status, the
// error body, Retry-After, and finishing exactly once (which also stops the transfer). Adapters
// derive from RelayBase and only translate; start_relay() wires it to a transfer.
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "plexus/provider.hpp"

namespace plexus {

class RelayBase : public HttpResponseHandler {
 public:
  RelayBase(std::string upstream_name, ResponseSink& sink)
      : sink_(&sink), name_(std::move(upstream_name)) {}

  void detach() { sink_ = nullptr; }
  void set_abort(std::function<void()> abort) { abort_ = std::move(abort); }
  void on_status(int status, const Headers& headers) override;

 protected:
  bool success() const { return status_ >= 200 && status_ < 300; }
  std::string upstream() const { return "upstream '" + name_ + "'"; }
  const std::string& name() const { return name_; }
  void keep_error_body(std::string_view bytes);  // a non-2xx body, bounded
  void keep_whole_body(std::string_view bytes);  // a whole answer, bounded (64 MiB: else a 502)
  // Handles the end of a transfer that failed (transport error or non-2xx). Returns true if it
  // finished the call; false when the body ended normally with a 2xx.
  bool finish_if_failed(TransferError error, std::string_view detail);
  void finish_error(Error e, bool retryable);
  void finish_ok();

  ResponseSink* sink_;
  std::string body_;
  bool emitted_ = false;  // the sink got output: no failover any more
  Usage usage_;
  std::string finish_reason_;

 private:
  void finish(const Outcome& o);
  std::string name_;
  std::function<void()> abort_;
  int status_ = 0;
  std::chrono::seconds cool_down_{0};
};

// Starts the transfer and returns the call the core holds: cancelling or destroying it detaches
// the relay and aborts the transfer.
std::unique_ptr<ProviderCall> start_relay(HttpClient& http, HttpRequest request,
                                          std::shared_ptr<RelayBase> relay);

// The request every HTTP adapter sends upstream: POST spec.url + path with the upstream's
// timeouts, a JSON body, the request id, the adapter's own headers (auth, protocol version,
// Accept), then the headers plugins set. One place, so no adapter forgets one of them.
HttpRequest upstream_post(const UpstreamSpec& spec, const std::string& path, std::string body,
                          const std::string& request_id, const Headers& plugin_headers, const Headers& adapter_headers);
inline HttpRequest upstream_post(const UpstreamSpec& spec, const std::string& path, std::string body,
                                 const ChatRequest& request, const Headers& adapter_headers) {
  return upstream_post(spec, path, std::move(body), request.request_id, request.extra_headers, adapter_headers);
}

// A request the adapter refuses before any transfer: the error reaches the sink at once.
std::unique_ptr<ProviderCall> refuse(ResponseSink& sink, Error error);

}  // namespace plexus
