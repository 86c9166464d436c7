#include "nodes/node_json.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace plexus {
namespace {

using nlohmann::json;

json or_null(double v) { return v < 0 ? json() : json(v); }
json or_null(std::int64_t v) { return v < 0 ? json() : json(v); }

bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

}  // namespace

json describe_node(const Node& node) {
  auto now = Node::Clock::now();
  auto backend = node.stats.backend();
  json models = json::array();
  for (const auto& m : *node.models()) {
    json hot = backend->loaded_known ? json(contains(backend->loaded_models, m.upstream_model)) : json();
    const auto& st = *m.stats;
    auto breaker = st.breaker(now);
    auto ms = [](double v) { return v < 0 ? json() : json(v); };
    auto ttft = st.ttft().median_and_p95(now);
    auto total = st.total().median_and_p95(now);
    json stats{{"ttft_ms", {{"p50", ms(ttft.p50)}, {"p95", ms(ttft.p95)}, {"ewma", ms(st.ttft_ewma_ms())}}},
               {"total_ms", {{"p50", ms(total.p50)}, {"p95", ms(total.p95)}}},
               {"tokens_per_second", ms(st.tokens_per_second())},
               {"error_ratio", st.error_ratio(now)},
               {"in_flight", st.in_flight()},
               {"consecutive_failures", st.consecutive_failures()},
               {"breaker", breaker == ModelStats::Breaker::kClosed ? "closed" : breaker == ModelStats::Breaker::kOpen ? "open" : "half_open"}};
    models.push_back({{"id", m.id},
                      {"stats", stats},
                      {"upstream_model", m.upstream_model},
                      {"hot", hot},
                      {"context_length", m.capabilities.context_length ? json(m.capabilities.context_length) : json()},
                      {"price", {{"input_per_1k", m.price.input_per_1k}, {"output_per_1k", m.price.output_per_1k}}},
                      {"capabilities", {{"tools", m.capabilities.tools}, {"vision", m.capabilities.vision},
                                        {"json_mode", m.capabilities.json_mode}}}});
  }
  json gpus = json::array();
  for (const auto& g : *node.gpus())
    gpus.push_back({{"index", g.index}, {"name", g.name}, {"utilization_percent", or_null(g.utilization_percent)},
                    {"memory_used_mib", or_null(g.memory_used_mib)}, {"memory_total_mib", or_null(g.memory_total_mib)},
                    {"temperature_c", or_null(g.temperature_c)}});
  bool pull = node.kind == NodeKind::kPull;
  auto all_models = node.models();
  bool any_available = std::any_of(all_models->begin(), all_models->end(), [&](const NodeModel& m) { return m.stats->available(now); });
  const char* health = node.draining.load()                  ? "draining"
                       : !backend->ready                      ? "not_ready"
                       : !any_available && !all_models->empty() ? "cooling_down"
                                                              : "healthy";
  std::int64_t credit = node.credit.load();
  json out{{"id", node.id},
           {"name", node.name},
           {"kind", pull ? "pull" : "direct"},
           {"region", node.region.empty() ? json() : json(node.region)},
           {"groups", node.groups},
           {"backend", node.backend_kind},
           {"models", models},
           {"health", health},
           {"in_flight", node.stats.in_flight()},
           {"capacity", {{"max_concurrency", node.max_concurrency ? json(node.max_concurrency) : json()},
                         {"free_slots", credit < 0 ? json() : json(credit)}}},
           {"gpus", gpus}};
  if (!backend->detail.empty()) out["detail"] = backend->detail;
  if (pull) {
    out["agent"] = node.agent;
    out["reported_in_flight"] = node.reported_in_flight.load();
    std::int64_t heard = node.last_heard_ms.load();
    out["last_heartbeat_ms_ago"] = heard ? json(steady_ms() - heard) : json();
    json deployments = json::array();
    for (const auto& d : *node.deployments())
      deployments.push_back({{"model", d.model}, {"state", d.state}, {"progress", d.progress},
                             {"detail", d.detail.empty() ? json() : json(d.detail)}});
    out["deployments"] = deployments;
    out["connected_at"] = std::chrono::duration_cast<std::chrono::seconds>(node.joined.time_since_epoch()).count();
  }
  return out;
}

}  // namespace plexus
