// The OpenAI chat-completions relay shared by the adapters whose backends speak that protocol
// (openai, llamacpp): the request body is relayed as the core normalized it; streamed chunks are
// relayed one by one as they arrive, whole answers verbatim. Only what metering needs is read:
// usage (or llama.cpp's timings), finish_reason, and errors.
#include "common/openai_relay.hpp"
#include "common/openai_shapes.hpp"

#include <nlohmann/json.hpp>

#include "common/embeddings_relay.hpp"
#include "common/json_text.hpp"
#include "common/relay_base.hpp"
#include "common/sse_parser.hpp"
#include "common/upstream_errors.hpp"

namespace plexus {
namespace {

using nlohmann::json;
namespace dom = simdjson::dom;

std::int64_t integer_field(dom::object o, std::string_view key) {
  dom::element e;
  if (o[key].get(e) != simdjson::SUCCESS) return 0;
  if (e.is_int64()) return e.get_int64().value_unsafe();
  if (e.is_uint64()) return static_cast<std::int64_t>(e.get_uint64().value_unsafe());
  if (e.is_double()) return static_cast<std::int64_t>(e.get_double().value_unsafe());
  return 0;
}

double number_field(dom::object o, std::string_view key) {
  dom::element e;
  if (o[key].get(e) != simdjson::SUCCESS) return 0;
  if (e.is_double()) return e.get_double().value_unsafe();
  if (e.is_int64()) return static_cast<double>(e.get_int64().value_unsafe());
  if (e.is_uint64()) return static_cast<double>(e.get_uint64().value_unsafe());
  return 0;
}

bool has_field(dom::object o, std::string_view key) { return o[key].error() == simdjson::SUCCESS; }

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
    bool ok = parser_.feed(bytes, [this](std::string_view event, std::string_view data) {
      if (event == "error") return on_backend_error(data);
      on_event(data);
    });
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
    JsonText text(body_, body_.capacity() - body_.size());  // read all it needs before the sink is called (json_text.hpp)
    dom::object doc;
    if (text.error() != simdjson::SUCCESS || text.root().get(doc) != simdjson::SUCCESS) {
      finish_error(Error::upstream(502, upstream() + " sent a response that is not JSON",
                                   "upstream_protocol_error"),
                   true);
      return;
    }
    if (has_field(doc, "error")) {
      finish_error(error_in(body_), true);
      return;
    }
    bool has_usage = read_usage(doc);
    read_timings(doc);
    read_finish_reason(doc);
    if (!has_usage && usage_.known) {  // timings only: give the client usage too (rare: re-encode)
      json whole = json::parse(body_, nullptr, false);
      whole["usage"] = openai::usage(usage_);
      body_ = openai::dump(whole);
    }
    sink_->on_body(body_);
    finish_ok();
  }

 private:
  // llama.cpp's "error: {"code", "message", "type"}" mid-stream: the stream ends with its words.
  void on_backend_error(std::string_view data) {
    if (!sink_) return;
    json e = json::parse(data, nullptr, false);
    std::string message = e.is_object() && e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>()
                                                                                             : "an error it did not describe";
    finish_error(Error::upstream(502, upstream() + " failed mid-stream: " + message, "upstream_error"), true);
  }

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
    JsonText text(data);  // read everything needed before the sink is called (json_text.hpp)
    dom::object chunk;
    if (text.error() != simdjson::SUCCESS || text.root().get(chunk) != simdjson::SUCCESS) {
      finish_error(Error::upstream(502, upstream() + " sent a malformed SSE event",
                                   "upstream_protocol_error"),
                   true);
      return;
    }
    if (has_field(chunk, "error")) {
      finish_error(error_in(data), true);
      return;
    }
    bool usage_only = false;
    if (read_usage(chunk)) {
      dom::array choices;
      usage_only = chunk["choices"].get(choices) != simdjson::SUCCESS || choices.size() == 0;
      sent_usage_ = usage_only && include_usage_;
    }
    read_timings(chunk);
    read_finish_reason(chunk);
    if (last_id_.empty()) {
      std::string_view id, model;
      if (chunk["id"].get(id) == simdjson::SUCCESS) last_id_ = std::string(id);
      last_created_ = integer_field(chunk, "created");
      if (chunk["model"].get(model) == simdjson::SUCCESS) last_model_ = std::string(model);
    }
    if (usage_only && !include_usage_) return;  // the router asked for it, not the client
    if (data.find('\n') != std::string_view::npos) {  // the parser joins data lines with LF only
      // A multi-line event must become one line again.
      sink_->on_chunk(openai::dump(json::parse(data, nullptr, false)));
    } else {
      sink_->on_chunk(data);
    }
    emitted_ = true;
  }

  // "usage": {prompt_tokens, completion_tokens}. Returns whether the object carried it.
  bool read_usage(dom::object doc) {
    dom::object u;
    if (doc["usage"].get(u) != simdjson::SUCCESS) return false;
    usage_.prompt_tokens = integer_field(u, "prompt_tokens");
    usage_.completion_tokens = integer_field(u, "completion_tokens");
    usage_.known = true;
    return true;
  }

  // llama.cpp reports "timings": {prompt_n, predicted_n, predicted_per_second}.
  void read_timings(dom::object doc) {
    if (!settings_.dialect.usage_from_timings) return;
    dom::object t;
    if (doc["timings"].get(t) != simdjson::SUCCESS) return;
    usage_.tokens_per_second = number_field(t, "predicted_per_second");
    if (!usage_.known || (usage_.prompt_tokens == 0 && usage_.completion_tokens == 0)) {
      usage_.prompt_tokens = integer_field(t, "prompt_n");
      usage_.completion_tokens = integer_field(t, "predicted_n");
      usage_.known = true;
    }
  }

  void read_finish_reason(dom::object doc) {
    dom::array choices;
    if (doc["choices"].get(choices) != simdjson::SUCCESS || choices.size() == 0) return;
    dom::object first;
    std::string_view reason;
    if (choices.at(0).get(first) == simdjson::SUCCESS && first["finish_reason"].get(reason) == simdjson::SUCCESS)
      finish_reason_ = std::string(reason);
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

// The headers every request to an OpenAI-compatible upstream carries: its key and its options'.
static Headers upstream_headers(const OpenAiUpstream& settings, const char* accept) {
  Headers own;
  own.reserve(2 + settings.extra_headers.size());
  own.emplace_back("Accept", accept);
  if (!settings.spec.api_key.empty()) own.emplace_back("Authorization", "Bearer " + settings.spec.api_key);
  own.insert(own.end(), settings.extra_headers.begin(), settings.extra_headers.end());
  return own;
}

std::unique_ptr<ProviderCall> start_openai_call(const OpenAiUpstream& settings, ProviderHost& host,
                                                const ChatRequest& request, ResponseSink& sink) {
  Headers own = upstream_headers(settings, request.stream ? "text/event-stream" : "application/json");
  auto http = upstream_post(settings.spec, settings.dialect.chat_path, request.body, request, own);
  return start_relay(host.http, std::move(http), std::make_shared<Relay>(settings, request, sink));
}

std::unique_ptr<ProviderCall> start_openai_embeddings(const OpenAiUpstream& settings, ProviderHost& host,
                                                      const EmbeddingRequest& request, ResponseSink& sink) {
  return start_embeddings_call(host.http, settings.spec, settings.dialect.embeddings_path, request.body, request,
                               upstream_headers(settings, "application/json"), read_openai_embeddings, sink);
}

}  // namespace plexus
