// The "demo" provider: an embedded simulated node, so a fresh install answers a curl with no GPU
// and no backend. It is a provider like any other: the core has no special path for it. Text is
// deterministic (demo_text.hpp); pacing is real: a first-token delay, then a steady token rate,
// driven by the loop's timers (no thread, no sleep).
#include <nlohmann/json.hpp>

#include <chrono>
#include <stdexcept>

#include "demo/demo_text.hpp"
#include "plexus/provider_abi.hpp"

namespace plexus {
namespace {

using nlohmann::json;

struct DemoSettings {
  std::chrono::milliseconds first_token{300};
  double tokens_per_second = 40;
  std::int64_t max_natural_tokens = 60;
};

std::string prompt_text(const json& body, std::int64_t& messages) {
  std::string text;
  messages = 0;
  auto it = body.find("messages");
  if (it == body.end() || !it->is_array()) return text;
  for (const auto& m : *it) {
    ++messages;
    if (!m.is_object() || !m.contains("content")) continue;
    const json& c = m["content"];
    if (c.is_string()) {
      text += c.get<std::string>();
      text += '\n';
    } else if (c.is_array()) {
      for (const auto& part : c)
        if (part.is_object() && part.contains("text") && part["text"].is_string()) {
          text += part["text"].get<std::string>();
          text += '\n';
        }
    }
  }
  return text;
}

class DemoCall final : public ProviderCall {
 public:
  DemoCall(const DemoSettings& s, Timers& timers, const ChatRequest& req, ResponseSink& sink)
      : settings_(s), timers_(timers), sink_(&sink), stream_(req.stream),
        include_usage_(req.include_usage), model_(req.model) {
    json body = json::parse(req.body, nullptr, false);
    std::int64_t messages = 0;
    std::string prompt = prompt_text(body, messages);
    prompt_tokens_ = demo::count_tokens(prompt) + 4 * messages;
    gen_ = demo::generate(prompt, req.seed, req.max_tokens, req.stop, s.max_natural_tokens);
    id_ = "chatcmpl-" + req.request_id;
    created_ = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    interval_ = std::chrono::milliseconds(
        static_cast<std::int64_t>(1000.0 / settings_.tokens_per_second));
    if (stream_) {
      schedule(settings_.first_token, [this] { stream_step(); });
    } else {
      auto total = settings_.first_token + interval_ * static_cast<std::int64_t>(gen_.tokens.size());
      schedule(total, [this] { answer_whole(); });
    }
  }
  ~DemoCall() override { cancel(); }

  void cancel() override {
    sink_ = nullptr;
    if (timer_) timers_.cancel(timer_);
    timer_ = 0;
  }

 private:
  void schedule(std::chrono::milliseconds delay, std::function<void()> fn) {
    timer_ = timers_.after(delay, std::move(fn));
  }

  json chunk(json delta, json finish_reason) const {
    return {{"id", id_},
            {"object", "chat.completion.chunk"},
            {"created", created_},
            {"model", model_},
            {"system_fingerprint", "plexus-demo"},
            {"choices",
             json::array({{{"index", 0},
                           {"delta", std::move(delta)},
                           {"logprobs", nullptr},
                           {"finish_reason", std::move(finish_reason)}}})}};
  }

  json usage() const {
    auto completion = static_cast<std::int64_t>(gen_.tokens.size());
    return {{"prompt_tokens", prompt_tokens_},
            {"completion_tokens", completion},
            {"total_tokens", prompt_tokens_ + completion}};
  }

  void stream_step() {
    timer_ = 0;
    if (!sink_) return;
    if (next_ == 0 && !sent_role_) {
      sent_role_ = true;
      sink_->on_chunk(chunk({{"role", "assistant"}, {"content", ""}}, nullptr).dump());
    }
    if (next_ < gen_.tokens.size()) {
      sink_->on_chunk(chunk({{"content", gen_.tokens[next_++]}}, nullptr).dump());
      if (sink_ && next_ < gen_.tokens.size()) {
        schedule(interval_, [this] { stream_step(); });
        return;
      }
    }
    if (!sink_) return;
    sink_->on_chunk(chunk(json::object(), gen_.finish_reason).dump());
    if (include_usage_) {
      json last = {{"id", id_},         {"object", "chat.completion.chunk"},
                   {"created", created_}, {"model", model_},
                   {"system_fingerprint", "plexus-demo"}, {"choices", json::array()},
                   {"usage", usage()}};
      sink_->on_chunk(last.dump());
    }
    finish();
  }

  void answer_whole() {
    timer_ = 0;
    if (!sink_) return;
    std::string text;
    for (const auto& t : gen_.tokens) text += t;
    json body = {{"id", id_},
                 {"object", "chat.completion"},
                 {"created", created_},
                 {"model", model_},
                 {"system_fingerprint", "plexus-demo"},
                 {"choices",
                  json::array({{{"index", 0},
                                {"message", {{"role", "assistant"}, {"content", text}, {"refusal", nullptr}}},
                                {"logprobs", nullptr},
                                {"finish_reason", gen_.finish_reason}}})},
                 {"usage", usage()}};
    sink_->on_body(body.dump());
    finish();
  }

  void finish() {
    if (!sink_) return;
    Outcome o;
    o.usage = {prompt_tokens_, static_cast<std::int64_t>(gen_.tokens.size()), true};
    o.finish_reason = gen_.finish_reason;
    ResponseSink* sink = sink_;
    sink_ = nullptr;
    sink->on_finish(o);
  }

  const DemoSettings& settings_;
  Timers& timers_;
  ResponseSink* sink_;
  bool stream_;
  bool include_usage_;
  std::string model_;
  std::string id_;
  std::int64_t created_ = 0;
  std::int64_t prompt_tokens_ = 0;
  demo::Generation gen_;
  std::size_t next_ = 0;
  bool sent_role_ = false;
  std::chrono::milliseconds interval_{25};
  TimerId timer_ = 0;
};

class DemoProvider final : public Provider {
 public:
  DemoProvider(DemoSettings s, Timers& timers) : settings_(s), timers_(timers) {}
  // Canned text: it neither calls tools, sees images nor writes JSON on request.
  Capabilities capabilities() const override { return {false, false, false, 0}; }
  std::unique_ptr<ProviderCall> start(const ChatRequest& request, ResponseSink& sink) override {
    return std::make_unique<DemoCall>(settings_, timers_, request, sink);
  }

 private:
  DemoSettings settings_;
  Timers& timers_;
};

}  // namespace

namespace {
std::unique_ptr<Provider> make_demo_provider(const UpstreamSpec& spec, ProviderHost& host) {
  DemoSettings s;
  json options = json::parse(spec.options_json);
  for (const auto& [key, value] : options.items()) {
    std::string path = "options." + key;
    if (key == "first_token_ms") {
      if (!value.is_number_integer() || value.get<std::int64_t>() < 0 || value.get<std::int64_t>() > 600000)
        throw std::invalid_argument(path + ": expected an integer from 0 to 600000");
      s.first_token = std::chrono::milliseconds(value.get<std::int64_t>());
    } else if (key == "tokens_per_second") {
      if (!value.is_number() || value.get<double>() < 0.1 || value.get<double>() > 100000)
        throw std::invalid_argument(path + ": expected a number from 0.1 to 100000");
      s.tokens_per_second = value.get<double>();
    } else if (key == "max_natural_tokens") {
      if (!value.is_number_integer() || value.get<std::int64_t>() < 8 || value.get<std::int64_t>() > 100000)
        throw std::invalid_argument(path + ": expected an integer from 8 to 100000");
      s.max_natural_tokens = value.get<std::int64_t>();
    } else {
      throw std::invalid_argument(path + ": unknown key; allowed keys are: first_token_ms, "
                                         "tokens_per_second, max_natural_tokens");
    }
  }
  return std::make_unique<DemoProvider>(s, host.timers);
}

}  // namespace
}  // namespace plexus

PLEXUS_PROVIDER(plexus::make_demo_provider)
