// Test fixture: a native plugin that fails on purpose, as config says:
//   {"throw_in": "on_request on_chunk on_route constructor", "model": "only-this-model"}
// Without "model" it throws for every request. {"block_ms": N, "model": "m"} instead blocks its
// loop for N ms in on_request for requests of model m (what a badly written native hook does).
// Built twice: as itself, and with PLEXUS_TEST_WRONG_ABI for the ABI-mismatch test.
#include <plexus/plugin_abi.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

class Misbehaving final : public plexus::Plugin {
 public:
  explicit Misbehaving(const plexus::PluginInit& init) : where_(init.config_json) {
    if (where_.find("constructor") != std::string::npos) throw std::runtime_error("refusing to start");
    auto at = where_.find("\"model\":\"");
    if (at != std::string::npos) model_ = where_.substr(at + 9, where_.find('"', at + 9) - at - 9);
    if (auto b = where_.find("\"block_ms\":"); b != std::string::npos) block_ms_ = std::stoi(where_.substr(b + 11));
  }
  unsigned hooks() const override {
    return plexus::kHookRequest | plexus::kHookRoute | plexus::kHookChunk;
  }
  plexus::RequestStatus on_request(plexus::RequestContext& ctx) override {
    if (block_ms_ > 0 && ctx.request_json().find("\"model\":\"" + model_ + "\"") != std::string::npos)
      std::this_thread::sleep_for(std::chrono::milliseconds(block_ms_));
    if (block_ms_ == 0 && where_.find("on_request") != std::string::npos && model_.empty()) throw std::runtime_error("boom in on_request");
    return plexus::RequestStatus::kContinue;
  }
  plexus::RouteStatus on_route(plexus::RouteContext& ctx) override {
    if (where_.find("on_route") != std::string::npos && (model_.empty() || ctx.model() == model_))
      throw std::logic_error("boom in on_route");
    return plexus::RouteStatus::kContinue;
  }
  plexus::ChunkStatus on_chunk(plexus::ChunkContext& ctx) override {
    if (where_.find("on_chunk") != std::string::npos && model_.empty() && !ctx.end_of_stream()) throw std::runtime_error("boom in on_chunk");
    return plexus::ChunkStatus::kUnchanged;
  }

 private:
  std::string where_;
  std::string model_;
  int block_ms_ = 0;
};

std::unique_ptr<plexus::Plugin> create(const plexus::PluginInit& init) {
  return std::make_unique<Misbehaving>(init);
}

const plexus::PluginDescriptor& describe() {
  namespace field = plexus::field;
  static const plexus::PluginDescriptor d{
      "misbehaving", "1.0.0", "Test fixture: fails on purpose",
      {field::string("throw_in", "", "Hooks (and \"constructor\") that throw"),
       field::string("model", "", "Only for requests of this model"),
       field::integer("block_ms", 0, "Block the loop this long in on_request").range(0, 60000)}};
  return d;
}

}  // namespace

#ifdef PLEXUS_TEST_WRONG_ABI
extern "C" __attribute__((visibility("default"))) int plexus_plugin_abi() { return 999; }
extern "C" __attribute__((visibility("default"))) void* plexus_plugin_create() { return nullptr; }
#else
PLEXUS_PLUGIN(describe, create)
#endif
