// The "demo" provider: an embedded simulated node, so a fresh install answers a curl with no GPU
// and no backend. It is a provider like any other: the core has no special path for it. Text is
// deterministic (demo_text.hpp); pacing is real: a first-token delay, then a steady token rate,
// driven by the loop's timers (no thread, no sleep).
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <stdexcept>

#include "common/openai_shapes.hpp"
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
        include_usage_(req.include_usage) {
    json body = json::parse(req.body, nullptr, false);
    std::int64_t messages = 0;
    std::string prompt = prompt_text(body, messages);
    prompt_tokens_ = demo::count_tokens(prompt) + 4 * messages;
    gen_ = demo::generate(prompt, req.seed, req.max_tokens, req.stop, s.max_natural_tokens);
    answer_ = openai::new_answer(req.request_id, req.model);
    answer_.system_fingerprint = "plexus-demo";
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
    return openai::chunk(answer_, std::move(delta), std::move(finish_reason));
  }

  Usage usage() const { return {prompt_tokens_, static_cast<std::int64_t>(gen_.tokens.size()), true}; }

  void stream_step() {
    timer_ = 0;
    if (!sink_) return;
    if (next_ == 0 && !sent_role_) {
      sent_role_ = true;
      sink_->on_chunk(openai::dump(chunk({{"role", "assistant"}, {"content", ""}}, nullptr)));
    }
    if (next_ < gen_.tokens.size()) {
      sink_->on_chunk(openai::dump(chunk({{"content", gen_.tokens[next_++]}}, nullptr)));
      if (sink_ && next_ < gen_.tokens.size()) {
        schedule(interval_, [this] { stream_step(); });
        return;
      }
    }
    if (!sink_) return;
    sink_->on_chunk(openai::dump(chunk(json::object(), gen_.finish_reason)));
    if (include_usage_) sink_->on_chunk(openai::dump(openai::usage_chunk(answer_, usage())));
    finish();
  }

  void answer_whole() {
    timer_ = 0;
    if (!sink_) return;
    std::string text;
    for (const auto& t : gen_.tokens) text += t;
    json message = {{"role", "assistant"}, {"content", text}, {"refusal", nullptr}};
    json body = openai::completion(answer_, std::move(message), gen_.finish_reason, usage());
    sink_->on_body(openai::dump(body));
    finish();
  }

  void finish() {
    if (!sink_) return;
    Outcome o;
    o.usage = usage();
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
  openai::Answer answer_;
  std::int64_t prompt_tokens_ = 0;
  demo::Generation gen_;
  std::size_t next_ = 0;
  bool sent_role_ = false;
  std::chrono::milliseconds interval_{25};
  TimerId timer_ = 0;
};

// Embeddings for the demo: each text hashed into a unit vector of 16 dimensions. The same text
// always gets the same vector; meaning plays no part (a demo, not a model).
json demo_embedding(const std::string& text) {
  std::vector<double> v(16);
  double norm = 0;
  for (std::size_t d = 0; d < v.size(); ++d) {
    std::uint64_t h = 1469598103934665603ull ^ (d * 0x9E3779B97F4A7C15ull);
    for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
    v[d] = static_cast<double>(h % 20001) / 10000.0 - 1.0;
    norm += v[d] * v[d];
  }
  json out = json::array();
  for (double x : v) out.push_back(norm > 0 ? x / std::sqrt(norm) : 0.0);
  return out;
}

class DemoEmbedCall final : public ProviderCall {
 public:
  DemoEmbedCall(const DemoSettings& s, Timers& timers, const EmbeddingRequest& req, ResponseSink& sink) : timers_(timers), sink_(&sink) {
    json body = json::parse(req.body);  // checked by the core
    json inputs = body["input"].is_string() ? json::array({body["input"]}) : body["input"];
    json data = json::array();
    std::int64_t tokens = 0;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      std::string text = inputs[i].is_string() ? inputs[i].get<std::string>() : inputs[i].dump();
      tokens += static_cast<std::int64_t>(text.size() / 4 + 1);
      data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", demo_embedding(text)}});
    }
    usage_ = {tokens, 0, true, 0};
    answer_ = json{{"object", "list"}, {"data", data}, {"model", req.model},
                   {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}}.dump();
    timer_ = timers_.after(s.first_token, [this] {
      timer_ = 0;
      auto* sink = sink_;
      sink_ = nullptr;
      sink->on_body(answer_);
      Outcome o;
      o.usage = usage_;
      sink->on_finish(o);
    });
  }
  ~DemoEmbedCall() override { cancel(); }
  void cancel() override {
    sink_ = nullptr;
    if (timer_) timers_.cancel(timer_);
    timer_ = 0;
  }

 private:
  Timers& timers_;
  ResponseSink* sink_;
  std::string answer_;
  Usage usage_;
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
  std::unique_ptr<ProviderCall> embed(const EmbeddingRequest& request, ResponseSink& sink) override {
    return std::make_unique<DemoEmbedCall>(settings_, timers_, request, sink);
  }

 private:
  DemoSettings settings_;
  Timers& timers_;
};

}  // namespace

namespace {
std::unique_ptr<Provider> make_demo_provider(const UpstreamSpec& spec, ProviderHost& host) {
  json options = json::parse(spec.options_json);  // checked against demo_options(), defaults in
  DemoSettings s;
  s.first_token = std::chrono::milliseconds(options["first_token_ms"].get<std::int64_t>());
  s.tokens_per_second = options["tokens_per_second"].get<double>();
  s.max_natural_tokens = options["max_natural_tokens"].get<std::int64_t>();
  return std::make_unique<DemoProvider>(s, host.timers);
}

const ConfigSchema& demo_options() {
  static const ConfigSchema schema = {
      field::integer("first_token_ms", 300, "Delay before the first token").range(0, 600000),
      field::number("tokens_per_second", 40, "Pace of the tokens after the first").range(0.1, 100000),
      field::integer("max_natural_tokens", 60, "Length of an answer when the request sets no max_tokens").range(8, 100000),
  };
  return schema;
}

}  // namespace
}  // namespace plexus

PLEXUS_PROVIDER(plexus::make_demo_provider)
PLEXUS_PROVIDER_OPTIONS(plexus::demo_options)
