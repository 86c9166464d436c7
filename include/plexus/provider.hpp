#pragma once
// Provider adapters turn one backend protocol into OpenAI-shaped responses. The core picks an
// upstream, hands its provider a normalized request and a sink, and relays what comes out.
//
// Threading: the router builds one provider object per event loop, with that loop's host; every
// method of an object runs on its loop's thread, as do the sink's callbacks. A provider must
// never block that thread: it talks to its backend through HttpClient and waits through Timers.
// Objects on different loops run at once: state shared between them must be thread-safe.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/error.hpp"
#include "plexus/http_client.hpp"

namespace plexus {

// The request after the core parsed and validated it. `body` is the JSON text that goes
// upstream (unknown fields preserved, "model" already mapped to the upstream's own name); the
// typed fields are the same values, parsed once so adapters need not parse again.
struct ChatRequest {
  std::string request_id;
  std::string model;                  // the upstream's name for the model
  std::string body;
  bool stream = false;
  bool include_usage = false;         // the client asked for stream_options.include_usage
  std::optional<std::int64_t> max_tokens;
  std::optional<std::int64_t> seed;
  std::vector<std::string> stop;
  Headers extra_headers;  // set by plugins (RequestContext::set_upstream_header)
};

// An embeddings request (POST /v1/embeddings) after the core checked it: `body` is OpenAI's
// embeddings request as JSON text ("input": a string or a list of strings, "encoding_format"
// float), "model" already mapped to the upstream's own name.
struct EmbeddingRequest {
  std::string request_id;
  std::string model;  // the upstream's name for the model
  std::string body;
  Headers extra_headers;
};

struct Usage {
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  bool known = false;  // false when the backend reported none
  double tokens_per_second = 0;  // generation speed, when the backend measures it (llama.cpp)
};

// How a provider call ended.
struct Outcome {
  std::optional<Error> error;   // empty on success
  bool retryable = false;       // with an error: another upstream may succeed (5xx, refused, timeout)
  Usage usage;
  std::string finish_reason;    // "stop", "length", "tool_calls"... when known
  std::chrono::seconds cool_down{0};  // the backend asked for a pause (429 Retry-After)
};

// What an upstream can serve. Routing skips upstreams that lack what a request needs, and a
// request no upstream can serve gets a 400 naming the feature. Operators may narrow these per
// upstream ("capabilities" in the config): an adapter knows its protocol, not the model behind it.
struct Capabilities {
  bool tools = true;
  bool vision = true;
  bool json_mode = true;
  std::int64_t context_length = 0;  // tokens; 0 = unknown
  // An embedding model: served at /v1/embeddings (through Provider::embed), never for chat.
  bool embeddings = false;
};

// Where a provider puts its output. Exactly one of the two shapes per call: a sequence of
// on_chunk for a streamed request, or one on_body for a whole one; then on_finish exactly once.
class ResponseSink {
 public:
  virtual ~ResponseSink() = default;
  // One chat.completion.chunk object as JSON text (no "data: " prefix, no newline).
  virtual void on_chunk(std::string_view chunk_json) = 0;
  // The whole chat.completion object as JSON text.
  virtual void on_body(std::string_view body_json) = 0;
  virtual void on_finish(const Outcome& outcome) = 0;
};

// One call in flight. Destroying it, or cancel(), stops it: no sink callback runs afterwards.
class ProviderCall {
 public:
  virtual ~ProviderCall() = default;
  virtual void cancel() = 0;
  // Flow control: the client is not reading; produce nothing more until resume(). Providers
  // that pace themselves (timers) may ignore it.
  virtual void pause() {}
  virtual void resume() {}
};

// What a backend says about itself when asked (Provider::poll_status).
struct BackendStatus {
  bool ready = true;                       // false: unreachable, loading, failing
  std::string detail;                      // why not ready
  bool loaded_known = false;               // loaded_models is meaningful
  std::vector<std::string> loaded_models;  // models in memory now ("hot")
  bool available_known = false;            // available_models is meaningful
  std::vector<std::string> available_models;  // models the backend can serve at all (pulled)
  std::int64_t context_length = 0;         // tokens; 0 = not reported
};

class Provider {
 public:
  virtual ~Provider() = default;
  virtual Capabilities capabilities() const { return {}; }
  // Asks the backend for its status and calls `done` once (on the loop thread). Returns false
  // when the adapter has nothing to ask; then `done` is never called. The host polls every few
  // seconds; an answer feeds routing: readiness, hot models, context length.
  virtual bool poll_status(std::function<void(BackendStatus)> done) { return false; }
  // The sink outlives the call. The provider may call the sink before start() returns.
  virtual std::unique_ptr<ProviderCall> start(const ChatRequest& request, ResponseSink& sink) = 0;
  // Embeddings, for adapters whose backends make them: one sink.on_body with OpenAI's embeddings
  // answer ({"object": "list", "data": [{"object": "embedding", "index", "embedding": [floats]}],
  // "model", "usage": {"prompt_tokens", "total_tokens"}}), then on_finish with usage.prompt_tokens.
  // Null: this adapter makes none (the request moves to another node, or ends with a 502
  // embeddings_unsupported; an operator marked a model as embeddings for it by mistake).
  virtual std::unique_ptr<ProviderCall> embed(const EmbeddingRequest& request, ResponseSink& sink) { return nullptr; }
};

// What the host lends a provider: its HTTP client and timers.
struct ProviderHost {
  HttpClient& http;
  Timers& timers;
};

// One configured upstream, as its provider's factory sees it.
struct UpstreamSpec {
  std::string name;
  std::string url;      // base URL without a trailing slash; may be empty (embedded providers)
  std::string api_key;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds first_byte_timeout{60000};
  std::chrono::milliseconds idle_timeout{120000};
  std::string options_json = "{}";  // the upstream's "options" object
};

// Builds a provider for one upstream. Throws std::invalid_argument on bad options, with a
// message that starts with the key path inside the upstream ("options.tokens_per_second: ...");
// the host adds the file and the upstream's own path.
using ProviderFactory = std::unique_ptr<Provider> (*)(const UpstreamSpec& spec, ProviderHost& host);

}  // namespace plexus
