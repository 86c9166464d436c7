#include "gateway/hook_runner.hpp"

#include <spdlog/spdlog.h>

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
    void respond(std::string completion_json) override { response = std::move(completion_json); }
    void reject(Error error) override { rejection = std::move(error); }
    std::optional<std::string> rewritten, response;
    std::optional<Error> rejection;

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

HookRunner::HookRunner(std::shared_ptr<Pipeline> pipeline, EventLoop& loop, const std::string& request_id,
                       const Caller& caller, std::chrono::steady_clock::time_point deadline)
    : pipeline_(std::move(pipeline)), loop_(loop), request_id_(request_id), caller_(caller), deadline_(deadline) {
  if (pipeline_) plugin_state_.resize(pipeline_->plugins().size());
}

HookRunner::~HookRunner() = default;

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
    if (p.config.fail_open) return true;
    failure_ = Error{500, "Plugin '" + p.config.name + "' failed in " + hook, "server_error", "", "plugin_error"};
    return false;
  }
}

HookRunner::RequestDecision HookRunner::on_request(ParsedChat& chat) {
  using Kind = RequestDecision::Kind;
  if (!any(kHookRequest)) return {};
  const auto& plugins = pipeline_->plugins();
  for (std::size_t i = 0; i < plugins.size(); ++i) {
    if (!(plugins[i].hooks & kHookRequest)) continue;
    Contexts::Request ctx(*this, chat);
    RequestStatus status = RequestStatus::kContinue;
    if (!guarded(i, "on_request", [&](Plugin& p) { status = p.on_request(ctx); })) return {Kind::kFail, *failure_, {}};
    if (ctx.rejection) return {Kind::kFail, *ctx.rejection, {}};
    if (ctx.response) return {Kind::kRespond, {}, std::move(*ctx.response)};
    if (status == RequestStatus::kRespond)
      return {Kind::kFail,
              {500, "Plugin '" + plugins[i].config.name + "' returned RESPOND without an answer", "server_error", "", "plugin_error"},
              {}};
    if (!ctx.rewritten) continue;
    auto parsed = parse_chat_request(*ctx.rewritten);
    if (auto* error = std::get_if<Error>(&parsed)) {
      spdlog::warn("[plugin:{}] on_request produced an invalid request ({}): {}", plugins[i].config.name,
                   request_id_, error->message);
      return {Kind::kFail,
              {500, "Plugin '" + plugins[i].config.name + "' produced an invalid request: " + error->message,
               "server_error", error->param, "plugin_error"},
              {}};
    }
    chat = std::move(std::get<ParsedChat>(parsed));
  }
  return {};
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
