#pragma once
// Runs one request's plugin hooks, plugin by plugin in pipeline order, and hands the exchange
// what they decided. A failing hook is contained here: logged with the plugin, the hook and the
// request id, then skipped (on_error "open") or turned into a failure of the request ("closed").
// What plugins add along the way (upstream headers, response headers and fields, their
// per-request state) is kept here too. One per request, on its loop.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "auth/key_store.hpp"
#include "gateway/chat_request.hpp"
#include "plexus/plugin.hpp"

namespace plexus {

class EventLoop;
class Pipeline;
namespace metrics {
class Shard;
}

class HookRunner {
 public:
  // `errors`: where a hook that throws is counted (per plugin); may be null.
  HookRunner(std::shared_ptr<Pipeline> pipeline, EventLoop& loop, const std::string& request_id,
             const Caller& caller, std::chrono::steady_clock::time_point deadline, metrics::Shard* errors = nullptr);
  ~HookRunner();
  HookRunner(const HookRunner&) = delete;
  HookRunner& operator=(const HookRunner&) = delete;

  bool any(unsigned hook_mask) const;

  // on_request of every plugin. A plugin's rewrite replaces `chat` (validated again, so the next
  // plugin and the upstream see a valid request). `chat` must outlive the runner's pause.
  struct RequestDecision {
    enum class Kind { kContinue, kFail, kRespond, kPending } kind = Kind::kContinue;
    Error error;           // kFail: a rejection, or a failed fail-closed plugin
    std::string response;  // kRespond: a whole chat.completion a plugin answered with
  };
  RequestDecision on_request(ParsedChat& chat);
  // kPending: a plugin paused the request. When it resumes (or its max_pause_ms passes), the
  // rest of the pipeline runs and `on_resumed` gets the final decision (never kPending twice in
  // a row without another pause), on the loop, never from inside a hook.
  void set_on_resumed(std::function<void(RequestDecision)> on_resumed) { on_resumed_ = std::move(on_resumed); }
  // The request ended while paused (client gone, deadline): the plugin's on_cancel runs, and
  // whatever it does with its handle afterwards is ignored.
  void cancel_pause();

  // on_route, plugin by plugin, until one picks. Scores and drops are written into `views`.
  struct RouteDecision {
    std::optional<std::size_t> picked;
    std::optional<Error> failure;
  };
  RouteDecision on_route(const std::string& model, std::vector<Candidate>& views);

  // on_chunk over one chunk (or the whole answer, or the end of a stream with `end`). Returns
  // whether the chunk goes out (possibly replaced in place); `inserted` gets the chunks plugins
  // add before it. failure() is set when a fail-closed plugin failed.
  bool on_chunk(std::string& chunk, std::vector<std::string>& inserted, bool whole, bool end);
  const std::optional<Error>& failure() const { return failure_; }

  // on_complete: a failure is only logged (the answer is decided).
  void on_complete(const Completion& completion);

  const Headers& upstream_headers() const { return upstream_headers_; }
  const Headers& response_headers() const { return response_headers_; }
  const std::vector<std::pair<std::string, std::string>>& extra_fields() const { return extra_fields_; }  // key, JSON

  struct Contexts;  // the hook contexts (hook_runner.cc)
  class Pause;      // a paused request's PendingRequest (hook_runner.cc)

 private:
  RequestDecision run_request_hooks(std::size_t first_plugin);
  std::optional<RequestDecision> apply_rewrite(std::size_t plugin, const std::string& body);
  void resume_after(Pause& pause, bool timed_out);

  template <class Fn>
  bool guarded(std::size_t plugin, const char* hook, Fn&& fn);

  std::shared_ptr<Pipeline> pipeline_;  // null: no plugins
  EventLoop& loop_;
  metrics::Shard* errors_;
  const std::string& request_id_;
  const Caller& caller_;
  std::chrono::steady_clock::time_point deadline_;
  std::vector<std::shared_ptr<void>> plugin_state_;
  std::size_t current_plugin_ = 0;
  std::optional<Error> failure_;
  Headers upstream_headers_;
  Headers response_headers_;
  std::vector<std::pair<std::string, std::string>> extra_fields_;
  ParsedChat* chat_ = nullptr;  // on_request's, while its hooks (and a pause) run
  std::shared_ptr<Pause> pause_;
  std::function<void(RequestDecision)> on_resumed_;
};

}  // namespace plexus
