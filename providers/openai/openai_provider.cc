// The "openai" provider: any OpenAI-compatible server (vLLM, llama.cpp server's /v1, LM Studio,
// another gateway). The request body is relayed as the core normalized it; streamed chunks are
// relayed one by one as they arrive, whole answers verbatim. The provider only reads what it must:
// usage and finish_reason for metering, and errors.
#include <nlohmann/json.hpp>

#include <chrono>
#include <stdexcept>

#include "common/sse_parser.hpp"
#include "common/upstream_errors.hpp"
#include "plexus/provider_abi.hpp"

namespace plexus {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxErrorBody = 64u << 10;
constexpr std::size_t kMaxWholeBody = 64u << 20;

struct Settings {
  UpstreamSpec spec;
  Headers extra_headers;
};

Usage usage_from(const json& j) {
  Usage u;
  if (j.is_object()) {
    u.prompt_tokens = j.value("prompt_tokens", 0);
    u.completion_tokens = j.value("completion_tokens", 0);
    u.known = true;
  }
  return u;
}

// Receives the upstream's HTTP response on the loop thread and drives the sink.
class Relay final : public HttpResponseHandler {
 public:
  Relay(const Settings& settings, const ChatRequest& request, ResponseSink& sink)
      : settings_(settings), stream_(request.stream), include_usage_(request.include_usage),
        sink_(&sink) {}

  void detach() { sink_ = nullptr; }
  void set_abort(std::function<void()> abort) { abort_ = std::move(abort); }

  void on_status(int status, const Headers& headers) override {
    status_ = status;
    if (status == 429) cool_down_ = retry_after(headers);
  }

  void on_data(std::string_view bytes) override {
    if (!sink_) return;
    if (status_ < 200 || status_ >= 300) {
      if (body_.size() < kMaxErrorBody) body_.append(bytes.substr(0, kMaxErrorBody - body_.size()));
      return;
    }
    if (!stream_) {
      if (body_.size() + bytes.size() > kMaxWholeBody) {
        finish_error(Error::upstream(502, "upstream answer is larger than 64 MiB", "upstream_too_large"),
                     false);
        return;
      }
      body_.append(bytes);
      return;
    }
    bool ok = parser_.feed(bytes, [this](std::string_view, std::string_view data) { on_event(data); });
    if (!ok && sink_)
      finish_error(Error::upstream(502, upstream() + " sent an oversized SSE event",
                                   "upstream_protocol_error"),
                   true);
  }

  void on_end(TransferError error, std::string_view detail) override {
    if (!sink_) return;
    if (error != TransferError::kNone) {
      finish_error(transport_error(error, detail, settings_.spec.name), true);
      return;
    }
    if (status_ < 200 || status_ >= 300) {
      finish_http_error();
      return;
    }
    if (stream_) {
      if (!saw_done_) {
        finish_error(Error::upstream(502, upstream() + " ended the stream before [DONE]",
                                     "upstream_truncated"),
                     true);
        return;
      }
      finish_ok();
      return;
    }
    json doc = json::parse(body_, nullptr, false);
    if (!doc.is_object()) {
      finish_error(Error::upstream(502, upstream() + " sent a response that is not JSON",
                                   "upstream_protocol_error"),
                   true);
      return;
    }
    if (doc.contains("error")) {
      finish_error(error_from(doc, 502), true);
      return;
    }
    if (doc.contains("usage")) usage_ = usage_from(doc["usage"]);
    read_finish_reason(doc);
    sink_->on_body(body_);
    finish_ok();
  }

 private:
  std::string upstream() const { return "upstream '" + settings_.spec.name + "'"; }

  void on_event(std::string_view data) {
    if (!sink_ || saw_done_) return;
    if (data == "[DONE]") {
      saw_done_ = true;
      return;
    }
    json chunk = json::parse(data, nullptr, false);
    if (!chunk.is_object()) {
      finish_error(Error::upstream(502, upstream() + " sent a malformed SSE event",
                                   "upstream_protocol_error"),
                   true);
      return;
    }
    if (chunk.contains("error")) {
      finish_error(error_from(chunk, 502), true);
      return;
    }
    bool usage_only = false;
    if (chunk.contains("usage") && chunk["usage"].is_object()) {
      usage_ = usage_from(chunk["usage"]);
      usage_only = !chunk.contains("choices") || chunk["choices"].empty();
    }
    read_finish_reason(chunk);
    if (usage_only && !include_usage_) return;  // the router asked for it, not the client
    if (data.find_first_of("\r\n") != std::string_view::npos) {
      sink_->on_chunk(chunk.dump());  // a multi-line event must become one line again
    } else {
      sink_->on_chunk(data);
    }
    emitted_ = true;
  }

  void read_finish_reason(const json& doc) {
    auto it = doc.find("choices");
    if (it == doc.end() || !it->is_array() || it->empty()) return;
    const json& c = (*it)[0];
    if (c.is_object() && c.contains("finish_reason") && c["finish_reason"].is_string())
      finish_reason_ = c["finish_reason"].get<std::string>();
  }

  Error error_from(const json& doc, int fallback_status) {
    Error e = Error::upstream(fallback_status, upstream() + " returned an error", "upstream_error");
    const json& err = doc["error"];
    if (err.is_object()) {
      if (err.contains("message") && err["message"].is_string())
        e.message = err["message"].get<std::string>();
      if (err.contains("type") && err["type"].is_string()) e.type = err["type"].get<std::string>();
      if (err.contains("param") && err["param"].is_string()) e.param = err["param"].get<std::string>();
      if (err.contains("code") && err["code"].is_string()) e.code = err["code"].get<std::string>();
    } else if (err.is_string()) {
      e.message = err.get<std::string>();
    }
    return e;
  }

  // A non-2xx answer: client mistakes (4xx) go back to the client as the upstream said them;
  // server trouble (5xx) and rate limits (429) let the router try another upstream.
  void finish_http_error() {
    bool retryable = false;
    Error e = http_error(status_, body_, settings_.spec.name, retryable);
    finish_error(std::move(e), retryable);
  }

  void finish_error(Error e, bool retryable) {
    if (!sink_) return;
    Outcome o;
    o.error = std::move(e);
    o.retryable = retryable && !emitted_;
    o.usage = usage_;
    o.cool_down = cool_down_;
    finish(o);
  }

  void finish_ok() {
    Outcome o;
    o.usage = usage_;
    o.finish_reason = finish_reason_;
    finish(o);
  }

  void finish(const Outcome& o) {
    ResponseSink* sink = sink_;
    sink_ = nullptr;
    if (abort_) abort_();  // stop reading; a no-op when the transfer already ended
    sink->on_finish(o);
  }

  const Settings& settings_;
  bool stream_;
  bool include_usage_;
  ResponseSink* sink_;
  std::function<void()> abort_;
  int status_ = 0;
  std::chrono::seconds cool_down_{0};
  std::string body_;
  SseParser parser_;
  bool saw_done_ = false;
  bool emitted_ = false;
  Usage usage_;
  std::string finish_reason_;
};

class OpenAiCall final : public ProviderCall {
 public:
  OpenAiCall(HttpClient& http, std::shared_ptr<Relay> relay) : http_(http), relay_(std::move(relay)) {}
  ~OpenAiCall() override { cancel(); }
  void set_transfer(TransferId id) { transfer_ = id; }
  void cancel() override {
    relay_->detach();
    if (transfer_) http_.abort(transfer_);
    transfer_ = 0;
  }

 private:
  HttpClient& http_;
  std::shared_ptr<Relay> relay_;
  TransferId transfer_ = 0;
};

class OpenAiProvider final : public Provider {
 public:
  OpenAiProvider(Settings settings, ProviderHost& host) : settings_(std::move(settings)), host_(host) {}

  std::unique_ptr<ProviderCall> start(const ChatRequest& request, ResponseSink& sink) override {
    HttpRequest http;
    http.url = settings_.spec.url + "/chat/completions";
    http.body = request.body;
    http.connect_timeout = settings_.spec.connect_timeout;
    http.first_byte_timeout = settings_.spec.first_byte_timeout;
    http.idle_timeout = settings_.spec.idle_timeout;
    http.headers = {{"Content-Type", "application/json"},
                    {"Accept", request.stream ? "text/event-stream" : "application/json"},
                    {"X-Request-Id", request.request_id}};
    if (!settings_.spec.api_key.empty())
      http.headers.emplace_back("Authorization", "Bearer " + settings_.spec.api_key);
    for (const auto& h : settings_.extra_headers) http.headers.push_back(h);
    for (const auto& h : request.extra_headers) http.headers.push_back(h);

    auto relay = std::make_shared<Relay>(settings_, request, sink);
    auto call = std::make_unique<OpenAiCall>(host_.http, relay);
    TransferId id = host_.http.start(std::move(http), relay);
    call->set_transfer(id);
    HttpClient* client = &host_.http;
    relay->set_abort([client, id] { client->abort(id); });
    return call;
  }

 private:
  Settings settings_;
  ProviderHost& host_;
};

}  // namespace

namespace {
std::unique_ptr<Provider> make_openai_provider(const UpstreamSpec& spec, ProviderHost& host) {
  if (spec.url.empty())
    throw std::invalid_argument(
        "url: the openai provider needs the server's base URL, e.g. http://127.0.0.1:8081/v1");
  Settings settings{spec, {}};
  json options = json::parse(spec.options_json);
  for (const auto& [key, value] : options.items()) {
    if (key != "headers")
      throw std::invalid_argument("options." + key + ": unknown key; allowed keys are: headers");
    if (!value.is_object())
      throw std::invalid_argument("options.headers: expected an object of header names to values");
    for (const auto& [name, v] : value.items()) {
      if (!v.is_string())
        throw std::invalid_argument("options.headers." + name + ": expected a string");
      settings.extra_headers.emplace_back(name, v.get<std::string>());
    }
  }
  return std::make_unique<OpenAiProvider>(std::move(settings), host);
}

}  // namespace
}  // namespace plexus

PLEXUS_PROVIDER(plexus::make_openai_provider)
