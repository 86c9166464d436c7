#include "server/api_routes.hpp"

#include "ledger/ledger.hpp"
#include "metrics/metrics.hpp"
#include "server/api_call.hpp"

// GET /metrics: Prometheus' text exposition format. No key needed (as Prometheus scrapes); it
// names models, nodes and plugins, never a key, a request or what was said.
namespace plexus {

namespace {

// What is read live at scrape time: the router's load, its queues, and every node's state.
void live_gauges(metrics::Writer& w, const ServerState& state, const ExchangeEnv& env) {
  w.family("plexus_inflight_requests", "gauge", "Requests being answered now");
  w.sample("plexus_inflight_requests", {}, static_cast<double>(state.inflight.load()));
  w.family("plexus_queued_requests", "gauge", "Requests waiting for a node with capacity");
  w.sample("plexus_queued_requests", {}, static_cast<double>(env.nodes->waiting()));
  w.family("plexus_ledger_queued_rows", "gauge", "Charges recorded but not yet committed to the ledger (its lag)");
  w.sample("plexus_ledger_queued_rows", {}, env.ledger ? static_cast<double>(env.ledger->queued()) : 0.0);

  auto nodes = env.nodes->snapshot()->nodes();
  w.family("plexus_node_up", "gauge", "1 when the node is ready and in rotation");
  for (const auto& n : nodes) w.sample("plexus_node_up", {{"node", n->id}}, n->stats.ready() && !n->draining.load() ? 1 : 0);
  w.family("plexus_node_in_flight", "gauge", "Requests the node is answering for this router");
  for (const auto& n : nodes) w.sample("plexus_node_in_flight", {{"node", n->id}}, static_cast<double>(n->stats.in_flight()));
  struct Gpu {
    const char* name;
    const char* help;
    double (*read)(const GpuMetrics&);
  };
  static const Gpu gpu_gauges[] = {
      {"plexus_node_gpu_utilization_ratio", "GPU utilization, 0 to 1, as the node reports it",
       [](const GpuMetrics& g) { return g.utilization_percent < 0 ? -1.0 : g.utilization_percent / 100; }},
      {"plexus_node_gpu_memory_used_bytes", "GPU memory in use",
       [](const GpuMetrics& g) { return g.memory_used_mib < 0 ? -1.0 : static_cast<double>(g.memory_used_mib) * 1048576; }},
      {"plexus_node_gpu_memory_total_bytes", "GPU memory in all",
       [](const GpuMetrics& g) { return g.memory_total_mib < 0 ? -1.0 : static_cast<double>(g.memory_total_mib) * 1048576; }},
      {"plexus_node_gpu_temperature_celsius", "GPU temperature",
       [](const GpuMetrics& g) { return g.temperature_c; }},
  };
  for (const auto& gauge : gpu_gauges) {
    w.family(gauge.name, "gauge", gauge.help);
    for (const auto& n : nodes)
      for (const auto& g : *n->gpus()) {
        double v = gauge.read(g);
        if (v >= 0) w.sample(gauge.name, {{"node", n->id}, {"gpu", std::to_string(g.index)}}, v);  // unknown: left out
      }
  }
}

}  // namespace

void ApiRoutes::prometheus(Call& call) {
  if (!state_.metrics) return call.error({404, "Metrics are off", "invalid_request_error", "", "unknown_url"});
  std::string text = state_.metrics->render([&](metrics::Writer& w) { live_gauges(w, state_, env_); });
  Headers h{{"content-type", "text/plain; version=0.0.4; charset=utf-8"}, {"cache-control", "no-store"}};
  h.insert(h.end(), call.base.begin(), call.base.end());
  call.responder->send_whole(200, h, text);
}

}  // namespace plexus
