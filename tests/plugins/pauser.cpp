// Test fixture: on_request pauses every request and finishes it later, as its config says:
//   {"delay_ms": 50, "then": "resume" | "reject" | "respond" | "never",
//    "fetch": "http://...", "work_ms": 0}
// - after delay_ms on the loop's timers: resume (with a rewritten "temperature" and an
//   x-pauser header), reject with 402, respond with a canned answer, or never (the pipeline's
//   max_pause_ms decides);
// - with "fetch": GETs the URL with the host's HTTP client first and puts its status and body
//   size in the x-pauser-fetch response header;
// - with "work_ms": spins that long on the worker pool first (never on the loop) and puts the
//   worker's thread id in x-pauser-worker, the loop's in x-pauser-loop.
// Every cancellation it hears of is counted in x-pauser-cancelled of the next answer.
#include <plexus/plugin_abi.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <sstream>
#include <thread>

namespace {

using nlohmann::json;

std::string thread_id() {
  std::ostringstream out;
  out << std::this_thread::get_id();
  return out.str();
}

std::atomic<int> cancelled{0};

class Fetch final : public plexus::HttpResponseHandler {
 public:
  explicit Fetch(std::function<void(std::string)> done) : done_(std::move(done)) {}
  void on_status(int status, const plexus::Headers&) override { status_ = status; }
  void on_data(std::string_view bytes) override { size_ += bytes.size(); }
  void on_end(plexus::TransferError error, std::string_view) override {
    done_(error == plexus::TransferError::kNone ? std::to_string(status_) + " " + std::to_string(size_) : "failed");
  }

 private:
  std::function<void(std::string)> done_;
  int status_ = 0;
  std::size_t size_ = 0;
};

class Pauser final : public plexus::Plugin {
 public:
  explicit Pauser(const plexus::PluginInit& init) : init_(init), config_(json::parse(init.config_json)) {}

  unsigned hooks() const override { return plexus::kHookRequest; }

  plexus::RequestStatus on_request(plexus::RequestContext& ctx) override {
    auto pending = ctx.pause();
    pending->set_response_header("x-pauser-loop", thread_id());
    pending->set_response_header("x-pauser-cancelled", std::to_string(cancelled.load()));
    std::weak_ptr<plexus::PendingRequest> weak = pending;
    auto timer = std::make_shared<plexus::TimerId>(0);
    auto transfer = std::make_shared<plexus::TransferId>(0);
    pending->on_cancel([this, timer, transfer] {
      ++cancelled;
      if (*timer) init_.timers->cancel(*timer);
      if (*transfer) init_.http->abort(*transfer);
    });
    auto finish = [this, weak, timer] {
      *timer = init_.timers->after(std::chrono::milliseconds(config_["delay_ms"].get<int>()), [this, weak] {
        auto p = weak.lock();
        if (p && p->active()) decide(*p);
      });
    };
    auto after_work = [this, weak, finish] {
      if (config_["work_ms"].get<int>() == 0) return finish();
      auto worker_id = std::make_shared<std::string>();
      bool queued = init_.workers->submit(
          [ms = config_["work_ms"].get<int>(), worker_id] {
            auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
            while (std::chrono::steady_clock::now() < end) {
            }
            *worker_id = thread_id();
          },
          [weak, worker_id, finish] {
            auto p = weak.lock();
            if (!p || !p->active()) return;
            p->set_response_header("x-pauser-worker", *worker_id);
            finish();
          });
      if (!queued)
        if (auto p = weak.lock()) p->reject({503, "the worker pool is full", "server_error", "", "workers_busy"});
    };
    std::string url = config_["fetch"].get<std::string>();
    if (url.empty()) {
      after_work();
    } else {
      plexus::HttpRequest get;
      get.method = "GET";
      get.url = url;
      *transfer = init_.http->start(std::move(get), std::make_shared<Fetch>([weak, after_work, transfer](std::string result) {
        *transfer = 0;
        auto p = weak.lock();
        if (!p || !p->active()) return;
        p->set_response_header("x-pauser-fetch", result);
        after_work();
      }));
    }
    return plexus::RequestStatus::kPending;
  }

 private:
  void decide(plexus::PendingRequest& p) {
    std::string then = config_["then"].get<std::string>();
    if (then == "reject") return p.reject({402, "the pauser says no", "invalid_request_error", "", "pauser_no"});
    if (then == "respond") {
      json answer = {{"id", "chatcmpl-pauser"}, {"object", "chat.completion"}, {"created", 1}, {"model", "pauser"},
                     {"choices", {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", "Answered after a pause."}}},
                                   {"finish_reason", "stop"}}}},
                     {"usage", {{"prompt_tokens", 1}, {"completion_tokens", 4}, {"total_tokens", 5}}}};
      return p.respond(answer.dump());
    }
    if (then == "never") return;
    json req = json::parse(p.request_json());
    req["temperature"] = 0.25;
    p.set_request_json(req.dump());
    p.set_upstream_header("x-pauser", "resumed");
    p.resume();
  }

  plexus::PluginInit init_;
  json config_;
};

std::unique_ptr<plexus::Plugin> create(const plexus::PluginInit& init) { return std::make_unique<Pauser>(init); }

const plexus::PluginDescriptor& describe() {
  namespace field = plexus::field;
  static const plexus::PluginDescriptor d{
      "pauser", "1.0.0", "Test fixture: pauses every request",
      {field::integer("delay_ms", 50, "How long each request stays paused").range(0, 600000),
       field::string("then", "resume", "What happens after the delay").one_of({"resume", "reject", "respond", "never"}),
       field::string("fetch", "", "A URL to GET first with the host's HTTP client"),
       field::integer("work_ms", 0, "CPU time to spend on the worker pool first").range(0, 60000)}};
  return d;
}

}  // namespace

PLEXUS_PLUGIN(describe, create)
