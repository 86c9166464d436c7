#include "nodes/pull/node_messages.hpp"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "common/json_text.hpp"

namespace plexus::node_messages {
namespace {

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

bool printable(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

bool is_price(double p) { return std::isfinite(p) && p >= 0 && p < 1e9; }

bool has_array(std::string_view text, const char* key) {
  JsonText doc(text);
  if (doc.error()) return false;
  simdjson::dom::object obj;
  if (doc.root().get_object().get(obj)) return false;
  simdjson::dom::array list;
  return !obj[key].get_array().get(list);
}

}  // namespace

std::string check_register(const pb::Register& reg) {
  const std::string& name = reg.name();
  if (name.empty() || name.size() > kMaxName) return "name: 1 to 64 characters";
  for (char c : name)
    if (!is_name_char(c)) return "name: only letters, digits, '.', '_' and '-'";
  for (const std::string* text : {&reg.region(), &reg.agent_version(), &reg.backend()})
    if (text->size() > kMaxText || !printable(*text)) return "region, agent_version and backend: printable, at most 256 characters";
  if (reg.models().empty()) return "models: a node must serve at least one model";
  if (auto why = check_models(reg.models()); !why.empty()) return why;
  return check_gpus(reg.gpus());
}

std::string check_models(const google::protobuf::RepeatedPtrField<pb::Model>& models) {
  if (static_cast<std::size_t>(models.size()) > kMaxModels) return "models: at most 1024";
  for (int i = 0; i < models.size(); ++i) {
    const auto& m = models[i];
    std::string at = "models[" + std::to_string(i) + "]";
    if (m.id().empty() || m.id().size() > kMaxModelId || !printable(m.id())) return at + ".id: 1 to 256 printable characters";
    for (int j = 0; j < i; ++j)
      if (models[j].id() == m.id()) return at + ".id: listed twice";
    if (!is_price(m.price_input_per_1k()) || !is_price(m.price_output_per_1k()))
      return at + ": prices must be finite and not negative";
  }
  return {};
}

std::string check_gpus(const google::protobuf::RepeatedPtrField<pb::Gpu>& gpus) {
  if (static_cast<std::size_t>(gpus.size()) > kMaxGpus) return "gpus: at most 64";
  for (const auto& g : gpus)
    if (g.name().size() > kMaxText || !printable(g.name())) return "gpus[].name: printable, at most 256 characters";
  return {};
}

std::string check_deployments(const google::protobuf::RepeatedPtrField<pb::DeploymentState>& states) {
  if (static_cast<std::size_t>(states.size()) > kMaxModels) return "deployments: at most 1024";
  for (const auto& d : states)
    if (d.model().empty() || d.model().size() > kMaxModelId || !printable(d.model()) || d.detail().size() > 4 * kMaxText ||
        !printable(d.detail()) || !std::isfinite(d.progress()))
      return "deployments[]: a model id of 1 to 256 printable characters, a printable detail, a finite progress";
  return {};
}

std::vector<DeploymentStatus> to_deployments(const google::protobuf::RepeatedPtrField<pb::DeploymentState>& states) {
  std::vector<DeploymentStatus> out;
  for (const auto& d : states) {
    const char* state = d.state() == pb::DeploymentState::PULLING       ? "pulling"
                        : d.state() == pb::DeploymentState::LOADED      ? "loaded"
                        : d.state() == pb::DeploymentState::FAILED      ? "failed"
                        : d.state() == pb::DeploymentState::UNSUPPORTED ? "unsupported"
                                                                        : "missing";
    out.push_back({d.model(), state, std::clamp(d.progress(), 0.0, 1.0), d.detail()});
  }
  return out;
}

bool same_models(const std::vector<NodeModel>& a, const std::vector<NodeModel>& b) {
  auto key = [](const NodeModel& m) {
    return std::tie(m.id, m.price.input_per_1k, m.price.output_per_1k, m.capabilities.tools, m.capabilities.vision,
                    m.capabilities.json_mode, m.capabilities.context_length, m.capabilities.embeddings);
  };
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [&](const auto& x, const auto& y) { return key(x) == key(y); });
}

std::vector<NodeModel> to_models(const google::protobuf::RepeatedPtrField<pb::Model>& models,
                                 const BreakerSettings& breaker) {
  std::vector<NodeModel> out;
  out.reserve(models.size());
  for (const auto& m : models) {
    Capabilities caps;
    caps.tools = m.tools();
    caps.vision = m.vision();
    caps.json_mode = m.json_mode();
    caps.embeddings = m.embeddings();
    caps.context_length = static_cast<std::int64_t>(std::min<std::uint64_t>(m.context_length(), 1ull << 40));
    out.push_back({m.id(), m.id(), {m.price_input_per_1k(), m.price_output_per_1k()}, caps,
                   std::make_shared<ModelStats>(breaker)});
  }
  return out;
}

std::vector<GpuMetrics> to_gpus(const google::protobuf::RepeatedPtrField<pb::Gpu>& gpus) {
  auto known = [](double v) { return std::isfinite(v) ? v : -1.0; };
  std::vector<GpuMetrics> out;
  for (const auto& g : gpus)
    out.push_back({g.index(), g.name(), known(g.utilization_percent()), g.memory_used_mib(), g.memory_total_mib(),
                   known(g.temperature_c())});
  return out;
}

BackendStatus to_backend_status(const google::protobuf::RepeatedPtrField<pb::Model>& models) {
  BackendStatus status;
  status.loaded_known = true;
  for (const auto& m : models)
    if (m.hot()) status.loaded_models.push_back(m.id());
  return status;
}

bool is_chunk_json(std::string_view text) { return has_array(text, "choices"); }
bool is_completion_json(std::string_view text) { return has_array(text, "choices"); }
bool is_embeddings_json(std::string_view text) { return has_array(text, "data"); }

}  // namespace plexus::node_messages
