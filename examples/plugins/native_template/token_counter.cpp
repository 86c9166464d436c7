// A native plugin to copy: it adds a header to every upstream request (on_request) and counts
// the tokens the router served (on_complete), reporting the running total in a response header
// and in the log. Build: it has its own CMake target (plexus_token_counter), which produces
// build/plugins/libplexus_token_counter.so. Enable it in the config:
//
//   "plugins": [{ "name": "tokens", "type": "native", "path": "../build/plugins/libplexus_token_counter.so",
//                 "config": { "header": "X-Plexus-Route", "value": "via-plexus", "log_every": 100 } }]
//
// Only <plexus/...> headers are used: the plugin depends on nothing of the router's internals.
#include <plexus/plugin_abi.hpp>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace {

// The config arrives checked against describe()'s schema, every default filled in, as compact
// JSON text; this template reads its three flat keys without a JSON library to show that none is
// needed. A real plugin would use one (nlohmann/json, for instance).
std::string string_value(const std::string& json, const std::string& key, std::string fallback) {
  auto at = json.find("\"" + key + "\"");
  if (at == std::string::npos) return fallback;
  auto open = json.find('"', json.find(':', at) + 1);
  auto close = json.find('"', open + 1);
  if (open == std::string::npos || close == std::string::npos) throw std::invalid_argument(key + ": expected a string");
  return json.substr(open + 1, close - open - 1);
}

long long integer_value(const std::string& json, const std::string& key, long long fallback) {
  auto at = json.find("\"" + key + "\"");
  if (at == std::string::npos) return fallback;
  return std::stoll(json.substr(json.find(':', at) + 1));
}

class TokenCounter final : public plexus::Plugin {
 public:
  explicit TokenCounter(const plexus::PluginInit& init)
      : log_(init.log),
        header_(string_value(init.config_json, "header", "X-Plexus-Route")),
        value_(string_value(init.config_json, "value", "via-plexus")),
        log_every_(integer_value(init.config_json, "log_every", 100)) {}

  unsigned hooks() const override { return plexus::kHookRequest | plexus::kHookComplete; }

  plexus::RequestStatus on_request(plexus::RequestContext& ctx) override {
    ctx.set_upstream_header(header_, value_);
    return plexus::RequestStatus::kContinue;
  }

  // The router makes one instance per event loop and calls each from its own loop only, so a
  // member needs no lock; but the totals are the router's, shared by every instance, hence atomics.
  void on_complete(plexus::CompleteContext& ctx) override {
    const auto& r = ctx.result();
    auto total = total_.fetch_add(r.prompt_tokens + r.completion_tokens) + r.prompt_tokens + r.completion_tokens;
    ctx.add_header("x-plexus-tokens-served", std::to_string(total));
    if (auto requests = ++requests_; requests % log_every_ == 0)
      log_(plexus::LogLevel::kInfo, std::to_string(requests) + " requests, " + std::to_string(total) + " tokens");
  }

 private:
  std::function<void(plexus::LogLevel, std::string_view)> log_;
  std::string header_, value_;
  long long log_every_;
  static inline std::atomic<std::int64_t> total_{0};
  static inline std::atomic<std::int64_t> requests_{0};
};

std::unique_ptr<plexus::Plugin> create(const plexus::PluginInit& init) {
  return std::make_unique<TokenCounter>(init);
}

// What the router checks before create() runs: an unknown key, a wrong type or a value out of
// range is refused at start-up with the config file and key path
// ("plexus.json: plugins[0].config.log_every: expected an integer from 1 to 1000000").
const plexus::PluginDescriptor& describe() {
  namespace field = plexus::field;
  static const plexus::PluginDescriptor d{
      "token-counter",
      "1.0.0",
      "Adds a header to upstream requests and counts the tokens served",
      {
          field::string("header", "X-Plexus-Route", "Header added to every upstream request"),
          field::string("value", "via-plexus", "Its value"),
          field::integer("log_every", 100, "Log the running total every this many requests").range(1, 1000000),
      }};
  return d;
}

}  // namespace

PLEXUS_PLUGIN(describe, create)
