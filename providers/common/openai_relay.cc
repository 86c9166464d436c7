// The OpenAI chat-completions relay shared by the adapters whose backends speak that protocol
// (openai, llamacpp): the request body is relayed as the core normalized it; streamed chunks are
// relayed one by one as they arrive, whole answers verbatim. Only what metering needs is read:
// usage (or llama.cpp's timings), finish_reason, and errors.
#include "common/openai_relay.hpp"
#include "common/openai_shapes.hpp"

#include <nlohmann/json.hpp>

#include "common/relay_base.hpp"
#include "common/sse_parser.hpp"
#include "common/upstream_errors.hpp"

namespace plexus {
namespace {

using nlohmann::json;


Usage usage_from(const json& j, double tokens_per_second) {
  Usage u;
  u.tokens_per_second = tokens_per_second;
  if (j.is_object()) {
    u.prompt_tokens = j.value("prompt_tokens", 0);
    u.completion_tokens = j.value("completion_tokens", 0);
    u.known = true;
  }
  return u;
}

// Receives the upstream's HTTP response on the loop thread and drives the sink.
class Relay final : public RelayBase {
 public:
  Relay(const OpenAiUpstream& settings, const ChatRequest& request, ResponseSink& sink)
      : RelayBase(settings.spec.name, sink), settings_(settings), stream_(request.stream),
        include_usage_(request.include_usage) {}

  void on_data(std::string_view bytes) override {
    if (!sink_) return;
    if (!success()) return keep_error_body(bytes);
    if (!stream_) return keep_whole_body(bytes);
    bool ok = parser_.feed(bytes, [this](std::string_view, std::string_view data) { on_event(data); });
    if (!ok && sink_)
      finish_error(Error::upstream(502, upstream() + " sent an oversized SSE event",
                                   "upstream_protocol_error"),
                   true);
  }

  void on_end(TransferError error, std::string_view detail) override {
    if (!sink_ || finish_if_failed(error, detail)) return;
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
      finish_error(error_in(body_), true);
      return;
    }
    if (doc.contains("usage")) usage_ = usage_from(doc["usage"], 0);
    read_timings(doc);
    read_finish_reason(doc);
    if (!doc.contains("usage") && usage_.known) {  // timings only: give the client usage too
      doc["usage"] = openai::usage(usage_);
      body_ = openai::dump(doc);
    }
    sink_->on_body(body_);
    finish_ok();
  }

 private:
  void on_event(std::string_view data) {
    if (!sink_ || saw_done_) return;
    if (data == "[DONE]") {
      saw_done_ = true;
      // A backend that measures but sends no usage chunk (llama.cpp's timings): the client that
      // asked still gets one.
      if (include_usage_ && !sent_usage_ && usage_.known && !last_id_.empty()) {
        sink_->on_chunk(openai::dump(openai::usage_chunk({last_id_, last_model_, last_created_, ""}, usage_)));
      }
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
      finish_error(error_in(data), true);
      return;
    }
    bool usage_only = false;
    if (chunk.contains("usage") && chunk["usage"].is_object()) {
      usage_ = usage_from(chunk["usage"], usage_.tokens_per_second);
      usage_only = !chunk.contains("choices") || chunk["choices"].empty();
      sent_usage_ = usage_only && include_usage_;
    }
    read_timings(chunk);
    read_finish_reason(chunk);
    if (last_id_.empty()) {
      last_id_ = chunk.value("id", "");
      last_created_ = chunk.value("created", 0);
      last_model_ = chunk.value("model", "");
    }
    if (usage_only && !include_usage_) return;  // the router asked for it, not the client
    if (data.find('\n') != std::string_view::npos) {  // the parser joins data lines with LF only
      sink_->on_chunk(chunk.dump());  // a multi-line event must become one line again
    } else {
      sink_->on_chunk(data);
    }
    emitted_ = true;
  }

  // llama.cpp reports "timings": {prompt_n, predicted_n, predicted_per_second}.
  void read_timings(const json& doc) {
    if (!settings_.dialect.usage_from_timings) return;
    auto it = doc.find("timings");
    if (it == doc.end() || !it->is_object()) return;
    usage_.tokens_per_second = it->value("predicted_per_second", 0.0);
    if (!usage_.known || (usage_.prompt_tokens == 0 && usage_.completion_tokens == 0)) {
      usage_.prompt_tokens = it->value("prompt_n", 0);
      usage_.completion_tokens = it->value("predicted_n", 0);
      usage_.known = true;
    }
  }

  void read_finish_reason(const json& doc) {
    auto it = doc.find("choices");
    if (it == doc.end() || !it->is_array() || it->empty()) return;
    const json& c = (*it)[0];
    if (c.is_object() && c.contains("finish_reason") && c["finish_reason"].is_string())
      finish_reason_ = c["finish_reason"].get<std::string>();
  }

  // An {"error": ...} where an answer or a chunk should be: the backend's words, status 502.
  Error error_in(std::string_view text) const {
    Error e = Error::upstream(502, upstream() + " returned an error", "upstream_error");
    read_error_body(text, e);
    return e;
  }

  const OpenAiUpstream& settings_;
  bool stream_;
  bool include_usage_;
  SseParser parser_;
  bool saw_done_ = false;
  bool sent_usage_ = false;
  std::string last_id_, last_model_;
  std::int64_t last_created_ = 0;
};

}  // namespace

std::unique_ptr<ProviderCall> start_openai_call(const OpenAiUpstream& settings, ProviderHost& host,
                                                const ChatRequest& request, ResponseSink& sink) {
  Headers own{{"Accept", request.stream ? "text/event-stream" : "application/json"}};
  if (!settings.spec.api_key.empty()) own.emplace_back("Authorization", "Bearer " + settings.spec.api_key);
  own.insert(own.end(), settings.extra_headers.begin(), settings.extra_headers.end());
  auto http = upstream_post(settings.spec, settings.dialect.chat_path, request.body, request, own);

  return start_relay(host.http, std::move(http), std::make_shared<Relay>(settings, request, sink));
}

}  // namespace plexus
