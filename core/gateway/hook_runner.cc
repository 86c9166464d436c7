#include "gateway/hook_runner.hpp"

#include <spdlog/spdlog.h>

#include "gateway/embeddings_request.hpp"
#include "metrics/metrics.hpp"
#include "loop/event_loop.hpp"
#include "plugins/pipeline.hpp"

namespace plexus {

// The contexts hooks see: thin views of the runner, valid while their hook runs.
struct HookRunner::Contexts {
  template <class Base>
  class Common : public Base {
   public:
    explicit Common(HookRunner& r) : r_(r) {}
    std::string_view request_id() const override { return r_.request_id_; }
    std::string_view key_id() const override { return r_.caller_.key_id; }
    std::string_view group() const override { return r_.caller_.group; }
    std::chrono::steady_clock::time_point deadline() const override { return r_.deadline_; }
    std::shared_ptr<void>& state() override { return r_.plugin_state_[r_.current_plugin_]; }

   protected:
    HookRunner& r_;
  };

  class Request final : public Common<RequestContext> {
   public:
    Request(HookRunner& r, const ParsedChat& chat) : Common(r), chat_(chat) {}
    std::string request_json() const override { return rewritten ? *rewritten : *chat_.raw; }
    void set_request_json(std::string body) override { rewritten = std::move(body); }
    void set_upstream_header(std::string name, std::string value) override {
      r_.upstream_headers_.emplace_back(std::move(name), std::move(value));
    }
    void set_response_header(std::string name, std::string value) override {
      r_.response_headers_.emplace_back(std::move(name), std::move(value));
    }
    std::optional<std::size_t> request_entry() const override {
      return r_.pipeline_->entry_for(r_.current_plugin_, chat_.plugin_ids);
    }
    void respond(std::string completion_json) override { response = std::move(completion_json); }
    void reject(Error error) override { rejection = std::move(error); }
    std::shared_ptr<PendingRequest> pause() override;
    std::optional<std::string> rewritten, response;
    std::optional<Error> rejection;
    std::shared_ptr<Pause> paused;

   private:
    const ParsedChat& chat_;
  };

  class Route final : public Common<RouteContext> {
   public:
    Route(HookRunner& r, const std::string& model, std::vector<Candidate>& c) : Common(r), model_(model), cands(c) {}
    std::string_view model() const override { return model_; }
    std::vector<Candidate>& candidates() override { return cands; }
    void pick(std::size_t index) override { picked = index; }
    const std::string& model_;
    std::vector<Candidate>& cands;
    std::optional<std::size_t> picked;
  };

  class Chunk final : public Common<ChunkContext> {
   public:
    Chunk(HookRunner& r, std::string& c, std::vector<std::string>& ins, bool whole, bool end)
        : Common(r), current(c), inserted(ins), whole_(whole), end_(end) {}
    std::string_view chunk() const override { return end_ ? std::string_view() : current; }
    void set_chunk(std::string json) override { replacement = std::move(json); }
    void insert(std::string chunk_json) override { inserted.push_back(std::move(chunk_json)); }
    bool whole() const override { return whole_; }
    bool end_of_stream() const override { return end_; }
    std::string& current;
    std::vector<std::string>& inserted;
    std::optional<std::string> replacement;
    bool whole_, end_;
  };

  class Complete final : public Common<CompleteContext> {
   public:
    Complete(HookRunner& r, const Completion& c) : Common(r), completion(c) {}
    const Completion& result() const override { return completion; }
    void add_field(std::string key, std::string value_json) override {
      r_.extra_fields_.emplace_back(std::move(key), std::move(value_json));
    }
    void add_header(std::string name, std::string value) override {
      r_.response_headers_.emplace_back(std::move(name), std::move(value));
    }
    const Completion& completion;
  };
};

// A paused request's handle. It outlives the runner when the plugin keeps it: `runner` goes null
// when the request ends, and every call after that (or after the decision) is ignored.
class HookRunner::Pause final : public PendingRequest, public std::enable_shared_from_this<Pause> {
 public:
  Pause(HookRunner& runner, std::size_t plugin, std::string body) : runner(&runner), plugin(plugin), body(std::move(body)) {}

  bool active() const override { return runner && !decided; }
  std::string request_json() const override { return rewritten ? *rewritten : body; }
  void set_request_json(std::string json) override {
    if (active()) rewritten = std::move(json);
  }
  void set_upstream_header(std::string name, std::string value) override {
    if (active()) runner->upstream_headers_.emplace_back(std::move(name), std::move(value));
  }
  void set_response_header(std::string name, std::string value) override {
    if (active()) runner->response_headers_.emplace_back(std::move(name), std::move(value));
  }
  void resume() override { decide(); }
  void reject(Error error) override {
    if (active()) rejection = std::move(error);
    decide();
  }
  void respond(std::string completion_json) override {
    if (active()) response = std::move(completion_json);
    decide();
  }
  void on_cancel(std::function<void()> fn) override { cancel = std::move(fn); }

  // The request went away, or the wait timed out: the plugin hears of it once.
  void abandon() {
    decided = true;
    if (timer && runner) runner->loop_.cancel(timer);
    timer = 0;
    if (auto fn = std::move(cancel)) fn();
  }

  HookRunner* runner;
  std::size_t plugin;
  std::string body;  // the request as the pausing hook saw it
  std::optional<std::string> rewritten, response;
  std::optional<Error> rejection;
  std::function<void()> cancel;
  TimerId timer = 0;
  bool decided = false;

 private:
  // The rest of the pipeline runs on a later turn: never inside the plugin's own call, which may
  // be a hook or a transfer callback still on the stack.
  void decide() {
    if (!active()) return;
    decided = true;
    runner->loop_.defer([self = shared_from_this()] {
      if (self->runner) self->runner->resume_after(*self, false);
    });
  }
};

std::shared_ptr<PendingRequest> HookRunner::Contexts::Request::pause() {
  if (!paused) paused = std::make_shared<Pause>(r_, r_.current_plugin_, request_json());
  return paused;
}

HookRunner::HookRunner(std::shared_ptr<Pipeline> pipeline, EventLoop& loop, const std::string& request_id,
                       const Caller& caller, std::chrono::steady_clock::time_point deadline, metrics::Shard* errors)
    : pipeline_(std::move(pipeline)), loop_(loop), errors_(errors), request_id_(request_id), caller_(caller), deadline_(deadline) {
  if (pipeline_) plugin_state_.resize(pipeline_->plugins().size());
}

HookRunner::~HookRunner() {
  if (pause_) pause_->runner = nullptr;
}

bool HookRunner::any(unsigned hook_mask) const { return pipeline_ && pipeline_->any(hook_mask); }

// Runs one plugin's hook. Returns false when the request must fail (failure_ says why).
template <class Fn>
bool HookRunner::guarded(std::size_t plugin, const char* hook, Fn&& fn) {
  const LoadedPlugin& p = pipeline_->plugins()[plugin];
  current_plugin_ = plugin;
  // Named while it runs, so a hook that never returns shows in /readyz and the log.
  struct Busy {
    EventLoop& loop;
    ~Busy() { loop.set_busy_with(nullptr); }
  } busy{loop_};
  loop_.set_busy_with(p.config.name.c_str());
  try {
    fn(*p.plugin);
    return true;
  } catch (const std::exception& e) {
    spdlog::warn("[plugin:{}] {} failed for request {}: {}", p.config.name, hook, request_id_, e.what());
    if (errors_) errors_->plugin_error(p.config.name);
    if (p.config.fail_open) return true;
    failure_ = Error{500, "Plugin '" + p.config.name + "' failed in " + hook, "server_error", "", "plugin_error"};
    return false;
  }
}

HookRunner::RequestDecision HookRunner::on_request(ParsedChat& chat) {
  if (!any(kHookRequest)) return {};
  chat_ = &chat;
  return run_request_hooks(0);
}

// A plugin's rewrite, checked: nullopt when valid (chat_ now holds it), else the failure.
std::optional<HookRunner::RequestDecision> HookRunner::apply_rewrite(std::size_t plugin, const std::string& body) {
  const std::string& name = pipeline_->plugins()[plugin].config.name;
  auto parsed = chat_->embeddings ? parse_embeddings_request(body) : parse_chat_request(body);
  if (auto* error = std::get_if<Error>(&parsed)) {
    spdlog::warn("[plugin:{}] on_request produced an invalid request ({}): {}", name, request_id_, error->message);
    return RequestDecision{RequestDecision::Kind::kFail,
                           {500, "Plugin '" + name + "' produced an invalid request: " + error->message, "server_error",
                            error->param, "plugin_error"},
                           {}};
  }
  *chat_ = std::move(std::get<ParsedChat>(parsed));
  return std::nullopt;
}

HookRunner::RequestDecision HookRunner::run_request_hooks(std::size_t first_plugin) {
  using Kind = RequestDecision::Kind;
  const auto& plugins = pipeline_->plugins();
  for (std::size_t i = first_plugin; i < plugins.size(); ++i) {
    if (!(plugins[i].hooks & kHookRequest)) continue;
    Contexts::Request ctx(*this, *chat_);
    RequestStatus status = RequestStatus::kContinue;
    bool threw = true;
    bool go_on = guarded(i, "on_request", [&](Plugin& p) {
      status = p.on_request(ctx);
      threw = false;
    });
    if (threw) {  // failed open (go_on) the plugin is skipped, with whatever it had set
      if (ctx.paused) {
        ctx.paused->abandon();
        ctx.paused->runner = nullptr;
      }
      if (go_on) continue;
      return {Kind::kFail, *failure_, {}};
    }
    if ((ctx.rejection || ctx.response) && ctx.paused) {
      ctx.paused->abandon();  // decided already: the handle the plugin keeps must do nothing
      ctx.paused->runner = nullptr;
    }
    if (ctx.rejection) return {Kind::kFail, *ctx.rejection, {}};
    if (ctx.response) return {Kind::kRespond, {}, std::move(*ctx.response)};
    bool pending = status == RequestStatus::kPending;
    if (pending != static_cast<bool>(ctx.paused) || status == RequestStatus::kRespond) {
      if (ctx.paused) {
        ctx.paused->abandon();
        ctx.paused->runner = nullptr;
      }
      const char* why = status == RequestStatus::kRespond ? "returned RESPOND without an answer"
                        : pending                          ? "returned PENDING without pausing the request"
                                                           : "paused the request but did not return PENDING";
      return {Kind::kFail, {500, "Plugin '" + plugins[i].config.name + "' " + why, "server_error", "", "plugin_error"}, {}};
    }
    if (ctx.rewritten)
      if (auto failed = apply_rewrite(i, *ctx.rewritten)) return *failed;
    if (pending) {
      pause_ = std::move(ctx.paused);
      if (ctx.rewritten) pause_->body = *ctx.rewritten;
      // Bounded by the plugin's max_pause_ms and by the request's own deadline.
      auto wait = std::min(plugins[i].config.max_pause,
                           std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - std::chrono::steady_clock::now()));
      pause_->timer = loop_.after(std::max(wait, std::chrono::milliseconds(0)), [weak = std::weak_ptr<Pause>(pause_)] {
        auto pause = weak.lock();
        if (!pause || !pause->runner || pause->decided) return;
        pause->timer = 0;
        pause->runner->resume_after(*pause, true);
      });
      return {Kind::kPending, {}, {}};
    }
  }
  return {};
}

void HookRunner::resume_after(Pause& pause, bool timed_out) {
  using Kind = RequestDecision::Kind;
  auto keep = pause_;  // the decision may start another pause, replacing pause_
  if (pause.timer) loop_.cancel(pause.timer);
  pause.timer = 0;
  const LoadedPlugin& plugin = pipeline_->plugins()[pause.plugin];
  RequestDecision decision;
  if (timed_out) {
    pause.abandon();
    spdlog::warn("[plugin:{}] kept request {} paused longer than {} ms", plugin.config.name, request_id_,
                 plugin.config.max_pause.count());
    if (plugin.config.fail_open) {
      decision = run_request_hooks(pause.plugin + 1);
    } else {
      decision = {Kind::kFail,
                  {504, "Plugin '" + plugin.config.name + "' did not finish in time", "server_error", "", "plugin_timeout"},
                  {}};
    }
  } else if (pause.rejection) {
    decision = {Kind::kFail, *pause.rejection, {}};
  } else if (pause.response) {
    decision = {Kind::kRespond, {}, std::move(*pause.response)};
  } else if (auto failed = pause.rewritten ? apply_rewrite(pause.plugin, *pause.rewritten) : std::nullopt) {
    decision = *failed;
  } else {
    decision = run_request_hooks(pause.plugin + 1);
  }
  if (decision.kind != Kind::kPending) pause_.reset();
  if (on_resumed_) on_resumed_(std::move(decision));
}

void HookRunner::cancel_pause() {
  if (!pause_) return;
  auto pause = std::move(pause_);
  if (pause->timer) loop_.cancel(pause->timer);
  pause->timer = 0;
  if (!pause->decided) pause->abandon();
  pause->runner = nullptr;
}

HookRunner::RouteDecision HookRunner::on_route(const std::string& model, std::vector<Candidate>& views) {
  RouteDecision decision;
  if (!any(kHookRoute)) return decision;
  const auto& plugins = pipeline_->plugins();
  for (std::size_t i = 0; i < plugins.size() && !decision.picked; ++i) {
    if (!(plugins[i].hooks & kHookRoute)) continue;
    Contexts::Route ctx(*this, model, views);
    RouteStatus status = RouteStatus::kContinue;
    if (!guarded(i, "on_route", [&](Plugin& p) { status = p.on_route(ctx); })) {
      decision.failure = failure_;
      return decision;
    }
    if (status == RouteStatus::kPick && ctx.picked && *ctx.picked < views.size()) decision.picked = ctx.picked;
  }
  return decision;
}

bool HookRunner::on_chunk(std::string& chunk, std::vector<std::string>& inserted, bool whole, bool end) {
  if (!any(kHookChunk)) return !end;
  const auto& plugins = pipeline_->plugins();
  for (std::size_t i = 0; i < plugins.size(); ++i) {
    if (!(plugins[i].hooks & kHookChunk)) continue;
    Contexts::Chunk ctx(*this, chunk, inserted, whole, end);
    ChunkStatus status = ChunkStatus::kUnchanged;
    if (!guarded(i, "on_chunk", [&](Plugin& p) { status = p.on_chunk(ctx); })) return false;
    if (end) continue;
    if (status == ChunkStatus::kModified && ctx.replacement) chunk = std::move(*ctx.replacement);
    if (status == ChunkStatus::kDrop) {
      if (whole) {
        spdlog::warn("[plugin:{}] cannot drop a whole answer; relaying it", plugins[i].config.name);
        continue;
      }
      return false;
    }
  }
  return !end;
}

void HookRunner::on_complete(const Completion& completion) {
  if (!any(kHookComplete)) return;
  const auto& plugins = pipeline_->plugins();
  for (std::size_t i = 0; i < plugins.size(); ++i) {
    if (!(plugins[i].hooks & kHookComplete)) continue;
    Contexts::Complete ctx(*this, completion);
    (void)guarded(i, "on_complete", [&](Plugin& p) { p.on_complete(ctx); });
  }
}

}  // namespace plexus
