#pragma once
// The plugin API: middleware that sees every chat completion at four points. Native plugins
// (shared libraries, see plugin_abi.hpp) implement Plugin; Lua plugins define global functions
// with the same names (docs/plugins.md). Std types only, so a plugin never depends on the
// router's JSON, HTTP or logging libraries.
//
// Threading: the router makes one instance of each plugin per event loop; an instance's hooks run
// on its loop, one call at a time. A hook must not block: it is on the path of every stream on
// that loop. A hook that has to wait (a search, a parse on the worker pool) pauses its request
// instead: RequestContext::pause() hands out a PendingRequest to finish it later.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/error.hpp"

namespace plexus {

// What a hook asks the pipeline to do next.
enum class [[nodiscard]] RequestStatus {
  kContinue,  // go on (to the next plugin, then routing)
  kRespond,   // stop: the hook called respond() or reject(); no upstream is called
  kPending,   // wait: the hook called pause(); the request goes on when its PendingRequest says
};
enum class [[nodiscard]] RouteStatus {
  kContinue,  // go on with the candidates as the hook left them (drops and scores)
  kPick,      // the hook called pick(); later plugins' on_route is skipped
};
enum class [[nodiscard]] ChunkStatus {
  kUnchanged,  // relay the chunk as it came
  kModified,   // relay what the hook set with set_chunk()
  kDrop,       // relay nothing for this chunk (inserted chunks still go out)
};

// What every hook's context offers.
class HookContext {
 public:
  virtual ~HookContext() = default;
  virtual std::string_view request_id() const = 0;
  virtual std::string_view key_id() const = 0;  // "-" without authentication
  virtual std::string_view group() const = 0;
  virtual std::chrono::steady_clock::time_point deadline() const = 0;
  // This plugin's per-request state: empty at first, kept until the request ends.
  virtual std::shared_ptr<void>& state() = 0;
};

class PendingRequest;

class RequestContext : public HookContext {
 public:
  virtual std::string request_json() const = 0;  // the body as JSON text
  // Replaces the body. It is validated again: an invalid body fails the request (plugin error).
  virtual void set_request_json(std::string json) = 0;
  // A header to send to the upstream with this request.
  virtual void set_upstream_header(std::string name, std::string value) = 0;
  // Where the request asks for this plugin instance: the index of the entry of its "plugins"
  // array that names it (by the instance's name, or by the plugin's descriptor name when no
  // instance has that name), or the number of entries when a model suffix asked (":online" asks
  // for "web"). Nothing when the request does not ask for it.
  virtual std::optional<std::size_t> request_entry() const = 0;
  // A header for the client's response, whole or streamed (x-plexus-web-search, say).
  virtual void set_response_header(std::string name, std::string value) = 0;
  // Pauses the request: keep the handle, return kPending, and finish it later. One pause per
  // hook call.
  virtual std::shared_ptr<PendingRequest> pause() = 0;
  // Answers the request directly: `completion_json` is a whole chat.completion object (the
  // router turns it into a stream when the client asked for one). Return kRespond.
  virtual void respond(std::string completion_json) = 0;
  // Refuses the request with an OpenAI-shaped error. Return kRespond.
  virtual void reject(Error error) = 0;
};

// A request a hook paused. Call it on the request's loop (from an HttpClient or Timers callback,
// or a Workers `done`). The first of resume / reject / respond decides; anything after that, or
// after the request ended (the client left, the plugin's max_pause_ms or the request's deadline
// passed), is ignored: check active() to skip work nobody will see.
class PendingRequest {
 public:
  virtual ~PendingRequest() = default;
  virtual bool active() const = 0;
  virtual std::string request_json() const = 0;
  // Before resume(): what RequestContext's setters of the same names do.
  virtual void set_request_json(std::string json) = 0;
  virtual void set_upstream_header(std::string name, std::string value) = 0;
  virtual void set_response_header(std::string name, std::string value) = 0;
  // Go on with the next plugin, then routing.
  virtual void resume() = 0;
  virtual void reject(Error error) = 0;
  virtual void respond(std::string completion_json) = 0;
  // Runs once, on the loop, if the request ends while still paused (the client left, the
  // deadline passed) or the pipeline stops waiting (max_pause_ms): abort transfers here. Not
  // called after resume / reject / respond.
  virtual void on_cancel(std::function<void()> fn) = 0;
};

// One upstream that could serve the request, with its live statistics.
struct Candidate {
  std::string node;           // the upstream's name
  std::string model;          // the model id the client asked for
  std::string group;          // the caller's group, which this upstream serves
  std::string region;
  bool hot = true;            // the model is already loaded (always true for plain upstreams)
  bool healthy = true;        // false while the upstream is cooling down after failures
  std::int64_t in_flight = 0;
  double latency_p50_ms = 0;  // time to first byte over recent requests; 0 = no data yet
  double latency_p95_ms = 0;
  double price_input_per_1k = 0;
  double price_output_per_1k = 0;
  double score = 0;           // higher goes first; hooks may set it
  bool dropped = false;       // hooks set it to exclude the candidate
};

class RouteContext : public HookContext {
 public:
  virtual std::string_view model() const = 0;
  virtual std::vector<Candidate>& candidates() = 0;
  // Makes candidates()[index] the first choice. Return kPick.
  virtual void pick(std::size_t index) = 0;
};

class ChunkContext : public HookContext {
 public:
  // The chunk as JSON text: a chat.completion.chunk object, or for a whole answer the one
  // chat.completion object. Empty when end_of_stream().
  virtual std::string_view chunk() const = 0;
  virtual void set_chunk(std::string json) = 0;  // with kModified
  // Adds a chunk before this one (or, at end_of_stream, before [DONE]).
  virtual void insert(std::string chunk_json) = 0;
  virtual bool whole() const = 0;          // a non-streamed answer, seen once
  virtual bool end_of_stream() const = 0;  // the last call for a stream: flush what you hold
};

struct Completion {
  int status = 0;              // what the client got (200 also for a stream that ended in error)
  bool stream = false;
  std::string node;            // "" when no upstream was reached
  std::string model;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  double ttft_ms = -1;
  double total_ms = 0;
  std::string finish_reason;
  std::string error_code;      // "" on success
  std::string error_message;
};

class CompleteContext : public HookContext {
 public:
  virtual const Completion& result() const = 0;
  // Adds a top-level field (value as JSON text) to the whole answer, or, for a stream, to a last
  // chunk sent before [DONE]. Ignored when the request failed before any answer.
  virtual void add_field(std::string key, std::string value_json) = 0;
  // Adds a response header: whole answers only (a stream's headers are already sent).
  virtual void add_header(std::string name, std::string value) = 0;
};

enum HookMask : unsigned {
  kHookRequest = 1u << 0,
  kHookRoute = 1u << 1,
  kHookChunk = 1u << 2,
  kHookComplete = 1u << 3,
};

// A middleware plugin. Override the hooks you need and declare them in hooks(): the pipeline
// calls only those, so a plugin without on_chunk costs streams nothing.
class Plugin {
 public:
  virtual ~Plugin() = default;
  virtual unsigned hooks() const = 0;  // HookMask bits
  virtual RequestStatus on_request(RequestContext&) { return RequestStatus::kContinue; }
  virtual RouteStatus on_route(RouteContext&) { return RouteStatus::kContinue; }
  virtual ChunkStatus on_chunk(ChunkContext&) { return ChunkStatus::kUnchanged; }
  virtual void on_complete(CompleteContext&) {}
};

}  // namespace plexus
