#include "common/relay_base.hpp"

#include "common/padded_text.hpp"
#include "common/upstream_errors.hpp"

namespace plexus {
namespace {

constexpr std::size_t kMaxErrorBody = 64u << 10;

class TransferCall final : public ProviderCall {
 public:
  TransferCall(HttpClient& http, std::shared_ptr<RelayBase> relay) : http_(http), relay_(std::move(relay)) {}
  ~TransferCall() override { cancel(); }
  void set_transfer(TransferId id) { transfer_ = id; }
  void cancel() override {
    relay_->detach();
    if (transfer_) http_.abort(transfer_);
    transfer_ = 0;
  }
  void pause() override {
    if (transfer_) http_.pause(transfer_);
  }
  void resume() override {
    if (transfer_) http_.resume(transfer_);
  }

 private:
  HttpClient& http_;
  std::shared_ptr<RelayBase> relay_;
  TransferId transfer_ = 0;
};

class RefusedCall final : public ProviderCall {
 public:
  void cancel() override {}
};

}  // namespace

void RelayBase::on_status(int status, const Headers& headers) {
  status_ = status;
  if (status == 429) cool_down_ = retry_after(headers);
}

void RelayBase::keep_error_body(std::string_view bytes) {
  if (body_.size() < kMaxErrorBody) body_.append(bytes.substr(0, kMaxErrorBody - body_.size()));
}

void RelayBase::keep_whole_body(std::string_view bytes) {
  constexpr std::size_t kMaxWholeBody = 64u << 20;
  if (body_.size() + bytes.size() > kMaxWholeBody)
    return finish_error(Error::upstream(502, upstream() + " answer is larger than 64 MiB", "upstream_too_large"), false);
  append_padded(body_, bytes);  // read where it lies (padded_text.hpp)
}

bool RelayBase::finish_if_failed(TransferError error, std::string_view detail) {
  if (error != TransferError::kNone) {
    finish_error(transport_error(error, detail, name_), true);
    return true;
  }
  if (!success()) {
    bool retryable = false;
    Error e = http_error(status_, body_, name_, retryable);
    finish_error(std::move(e), retryable);
    return true;
  }
  return false;
}

void RelayBase::finish_error(Error e, bool retryable) {
  if (!sink_) return;
  Outcome o;
  o.error = std::move(e);
  o.retryable = retryable && !emitted_;
  o.usage = usage_;
  o.cool_down = cool_down_;
  finish(o);
}

void RelayBase::finish_ok() {
  if (!sink_) return;
  Outcome o;
  o.usage = usage_;
  o.finish_reason = finish_reason_;
  finish(o);
}

void RelayBase::finish(const Outcome& o) {
  ResponseSink* sink = sink_;
  sink_ = nullptr;
  if (abort_) abort_();  // stop reading; a no-op when the transfer already ended
  sink->on_finish(o);
}

std::unique_ptr<ProviderCall> start_relay(HttpClient& http, HttpRequest request,
                                          std::shared_ptr<RelayBase> relay) {
  auto call = std::make_unique<TransferCall>(http, relay);
  TransferId id = http.start(std::move(request), relay);
  call->set_transfer(id);
  HttpClient* client = &http;
  relay->set_abort([client, id] { client->abort(id); });
  return call;
}

std::unique_ptr<ProviderCall> refuse(ResponseSink& sink, Error error) {
  Outcome o;
  o.error = std::move(error);
  sink.on_finish(o);
  return std::make_unique<RefusedCall>();
}

HttpRequest upstream_post(const UpstreamSpec& spec, const std::string& path, std::string body,
                          const std::string& request_id, const Headers& plugin_headers, const Headers& adapter_headers) {
  HttpRequest http;
  http.url = spec.url + path;
  http.body = std::move(body);
  http.connect_timeout = spec.connect_timeout;
  http.first_byte_timeout = spec.first_byte_timeout;
  http.idle_timeout = spec.idle_timeout;
  http.headers.reserve(2 + adapter_headers.size() + plugin_headers.size());
  http.headers.emplace_back("Content-Type", "application/json");
  http.headers.emplace_back("X-Request-Id", request_id);
  http.headers.insert(http.headers.end(), adapter_headers.begin(), adapter_headers.end());
  http.headers.insert(http.headers.end(), plugin_headers.begin(), plugin_headers.end());
  return http;
}

}  // namespace plexus
