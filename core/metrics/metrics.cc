#include "metrics/metrics.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

namespace plexus::metrics {

template <std::size_t N>
void Histogram<N>::observe(double seconds, const std::array<double, N>& bounds) {
  ++count;
  sum += seconds;
  for (std::size_t i = 0; i < N; ++i)
    if (seconds <= bounds[i]) {
      ++buckets[i];
      return;
    }
}

template <std::size_t N>
void Histogram<N>::add(const Histogram& other) {
  for (std::size_t i = 0; i < N; ++i) buckets[i] += other.buckets[i];
  count += other.count;
  sum += other.sum;
}

void Shard::ModelCounts::add(const ModelCounts& other) {
  total.add(other.total);
  ttft.add(other.ttft);
  prompt_tokens += other.prompt_tokens;
  completion_tokens += other.completion_tokens;
  cost += other.cost;
}

void Shard::request(const RequestSample& s) {
  std::lock_guard lock(mu_);
  auto key = std::tuple<std::string_view, std::string_view, int>(s.model, s.node, s.status);
  auto counted = requests_.find(key);
  if (counted == requests_.end())
    counted = requests_.emplace(std::tuple<std::string, std::string, int>(s.model, s.node, s.status), 0).first;
  ++counted->second;
  auto m = models_.find(s.model);
  if (m == models_.end()) m = models_.emplace(std::string(s.model), ModelCounts{}).first;
  m->second.total.observe(s.total_s, kLatencyBuckets);
  if (s.ttft_s >= 0) m->second.ttft.observe(s.ttft_s, kLatencyBuckets);
  m->second.prompt_tokens += static_cast<std::uint64_t>(std::max<std::int64_t>(s.prompt_tokens, 0));
  m->second.completion_tokens += static_cast<std::uint64_t>(std::max<std::int64_t>(s.completion_tokens, 0));
  m->second.cost += s.cost;
  if (s.overhead_s >= 0) overhead_.observe(s.overhead_s, kOverheadBuckets);
  if (s.status >= 400) {
    auto now = std::chrono::system_clock::now().time_since_epoch();
    errors_.push_back({std::chrono::duration_cast<std::chrono::milliseconds>(now).count(), std::string(s.request_id),
                       std::string(s.asked_model.empty() ? s.model : s.asked_model), std::string(s.node),
                       std::string(s.error_code), s.status});
    if (errors_.size() > kKeptErrors) errors_.pop_front();
  }
}

void Shard::plugin_error(const std::string& plugin) {
  std::lock_guard lock(mu_);
  ++plugin_errors_[plugin];
}

namespace {

std::string escaped(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

void Writer::family(const std::string& name, const char* type, const char* help) {
  out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void Writer::sample(const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels, double value) {
  out_ += name;
  if (!labels.empty()) {
    out_ += '{';
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (i) out_ += ',';
      out_ += labels[i].first + "=\"" + escaped(labels[i].second) + '"';
    }
    out_ += '}';
  }
  out_ += ' ' + number(value) + '\n';
}

template <std::size_t N>
void Writer::histogram(const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels,
                       const Histogram<N>& h, const std::array<double, N>& bounds) {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < N; ++i) {
    cumulative += h.buckets[i];
    auto with_le = labels;
    with_le.emplace_back("le", number(bounds[i]));
    sample(name + "_bucket", with_le, static_cast<double>(cumulative));
  }
  auto inf = labels;
  inf.emplace_back("le", "+Inf");
  sample(name + "_bucket", inf, static_cast<double>(h.count));
  sample(name + "_sum", labels, h.sum);
  sample(name + "_count", labels, static_cast<double>(h.count));
}

Registry::Registry(std::size_t loops) {
  for (std::size_t i = 0; i < loops; ++i) shards_.push_back(std::make_unique<Shard>());
}

std::string Registry::render(const std::function<void(Writer&)>& live) const {
  Shard all;  // the shards merged, one at a time under its own lock
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mu_);
    for (const auto& [k, v] : shard->requests_) all.requests_[k] += v;
    for (const auto& [k, v] : shard->models_) all.models_[k].add(v);
    all.overhead_.add(shard->overhead_);
    for (const auto& [k, v] : shard->plugin_errors_) all.plugin_errors_[k] += v;
  }
  Writer w;
  w.family("plexus_requests_total", "counter", "Requests answered, by model, serving node and HTTP status");
  for (const auto& [k, v] : all.requests_)
    w.sample("plexus_requests_total", {{"model", std::get<0>(k)}, {"node", std::get<1>(k)}, {"code", std::to_string(std::get<2>(k))}},
             static_cast<double>(v));
  w.family("plexus_request_duration_seconds", "histogram", "From the request's arrival to the end of its answer");
  for (const auto& [model, m] : all.models_) w.histogram("plexus_request_duration_seconds", {{"model", model}}, m.total, kLatencyBuckets);
  w.family("plexus_time_to_first_token_seconds", "histogram", "From the request's arrival to the first byte of its answer");
  for (const auto& [model, m] : all.models_)
    if (m.ttft.count) w.histogram("plexus_time_to_first_token_seconds", {{"model", model}}, m.ttft, kLatencyBuckets);
  w.family("plexus_router_overhead_seconds", "histogram",
           "Time the router added before the first byte: parsing, plugins, routing, waiting for a node, failed attempts");
  w.histogram("plexus_router_overhead_seconds", {}, all.overhead_, kOverheadBuckets);
  w.family("plexus_tokens_total", "counter", "Tokens billed, by model and direction (prompt, completion)");
  for (const auto& [model, m] : all.models_) {
    w.sample("plexus_tokens_total", {{"model", model}, {"direction", "prompt"}}, static_cast<double>(m.prompt_tokens));
    w.sample("plexus_tokens_total", {{"model", model}, {"direction", "completion"}}, static_cast<double>(m.completion_tokens));
  }
  w.family("plexus_spend_total", "counter", "What keys were charged, in the prices' currency, by model");
  for (const auto& [model, m] : all.models_) w.sample("plexus_spend_total", {{"model", model}}, m.cost);
  w.family("plexus_plugin_errors_total", "counter", "Plugin hooks that threw, by plugin");
  for (const auto& [plugin, n] : all.plugin_errors_) w.sample("plexus_plugin_errors_total", {{"plugin", plugin}}, static_cast<double>(n));
  live(w);
  return w.take();
}

std::map<std::string, std::uint64_t> Registry::requests_by_node() const {
  std::map<std::string, std::uint64_t> out;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mu_);
    for (const auto& [k, v] : shard->requests_)
      if (std::get<1>(k) != "-") out[std::get<1>(k)] += v;
  }
  return out;
}

std::vector<ErrorEvent> Registry::recent_errors() const {
  std::vector<ErrorEvent> out;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mu_);
    out.insert(out.end(), shard->errors_.begin(), shard->errors_.end());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.at_ms > b.at_ms; });
  if (out.size() > kKeptErrors) out.resize(kKeptErrors);
  return out;
}

template void Writer::histogram<kLatencyBuckets.size()>(const std::string&, const std::vector<std::pair<std::string, std::string>>&,
                                                        const Histogram<kLatencyBuckets.size()>&, const std::array<double, kLatencyBuckets.size()>&);
template void Writer::histogram<kOverheadBuckets.size()>(const std::string&, const std::vector<std::pair<std::string, std::string>>&,
                                                         const Histogram<kOverheadBuckets.size()>&, const std::array<double, kOverheadBuckets.size()>&);
template struct Histogram<kLatencyBuckets.size()>;
template struct Histogram<kOverheadBuckets.size()>;

}  // namespace plexus::metrics
