// Test fixture: every hook of the native runtime doing real work, driven by its config:
//   {"reject_model": "m", "pick": "node", "uppercase": true, "meter": true}
// - on_request rejects requests for reject_model with 451, and rewrites "temperature" to 0.3
// - on_route picks the candidate named by "pick"
// - on_chunk upper-cases every content delta (streamed) or the message (whole)
// - on_complete adds {"native_meter": {"tokens": N}} and a header
#include <plexus/plugin_abi.hpp>

#include <nlohmann/json.hpp>

#include <cctype>

namespace {

using nlohmann::json;

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

class NativeHooks final : public plexus::Plugin {
 public:
  explicit NativeHooks(const plexus::PluginInit& init) : config_(json::parse(init.config_json)) {}

  unsigned hooks() const override {
    return plexus::kHookRequest | plexus::kHookRoute | plexus::kHookChunk | plexus::kHookComplete;
  }

  plexus::RequestStatus on_request(plexus::RequestContext& ctx) override {
    json req = json::parse(ctx.request_json());
    if (req["model"] == config_.value("reject_model", "")) {
      ctx.reject({451, "blocked by the native plugin", "invalid_request_error", "model", "native_block"});
      return plexus::RequestStatus::kRespond;
    }
    req["temperature"] = 0.3;
    ctx.set_request_json(req.dump());
    return plexus::RequestStatus::kContinue;
  }

  plexus::RouteStatus on_route(plexus::RouteContext& ctx) override {
    auto& cands = ctx.candidates();
    for (std::size_t i = 0; i < cands.size(); ++i)
      if (cands[i].node == config_.value("pick", "")) {
        ctx.pick(i);
        return plexus::RouteStatus::kPick;
      }
    return plexus::RouteStatus::kContinue;
  }

  plexus::ChunkStatus on_chunk(plexus::ChunkContext& ctx) override {
    if (ctx.end_of_stream() || !config_.value("uppercase", false)) return plexus::ChunkStatus::kUnchanged;
    json chunk = json::parse(ctx.chunk());
    if (ctx.whole()) {
      auto& msg = chunk["choices"][0]["message"];
      msg["content"] = upper(msg["content"].get<std::string>());
    } else {
      if (chunk["choices"].empty() || !chunk["choices"][0]["delta"].contains("content"))
        return plexus::ChunkStatus::kUnchanged;
      auto& delta = chunk["choices"][0]["delta"];
      delta["content"] = upper(delta["content"].get<std::string>());
    }
    ctx.set_chunk(chunk.dump());
    return plexus::ChunkStatus::kModified;
  }

  void on_complete(plexus::CompleteContext& ctx) override {
    if (!config_.value("meter", false)) return;
    const auto& r = ctx.result();
    ctx.add_field("native_meter", json{{"tokens", r.prompt_tokens + r.completion_tokens}, {"node", r.node}}.dump());
    ctx.add_header("x-native-meter", std::to_string(r.prompt_tokens + r.completion_tokens));
  }

 private:
  json config_;
};

std::unique_ptr<plexus::Plugin> create(const plexus::PluginInit& init) { return std::make_unique<NativeHooks>(init); }

const plexus::PluginDescriptor& describe() {
  namespace field = plexus::field;
  static const plexus::PluginDescriptor d{
      "native-hooks", "1.0.0", "Test fixture: every hook of the native runtime",
      {field::string("reject_model", "", "Requests for this model get 451"),
       field::string("pick", "", "on_route picks this node"),
       field::boolean("uppercase", false, "Upper-case every content delta"),
       field::boolean("meter", false, "Add native_meter and x-native-meter")}};
  return d;
}

}  // namespace

PLEXUS_PLUGIN(describe, create)
