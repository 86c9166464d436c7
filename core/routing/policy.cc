#include "routing/policy.hpp"

#include <algorithm>
#include <cmath>
#include <tuple>

namespace plexus::routing {
namespace {

struct Row {
  std::size_t index;
  bool available;
  bool in_region;
  bool hot;
  double ttft;   // predicted, ms (unknown: 0, so a new node gets its chance)
  double load;   // in flight for the capacity (0..)
  double price;  // per 1K input + per 1K output
  double tps;    // tokens per second (unknown: above the best known)
  double errors; // share of recent attempts that failed
  double key = 0;
};

double load_of(const Node& node) {
  auto in_flight = static_cast<double>(node.stats.in_flight());
  std::int64_t credit = node.credit.load(std::memory_order_relaxed);
  double capacity = node.max_concurrency > 0 ? static_cast<double>(node.max_concurrency)
                    : credit >= 0            ? in_flight + static_cast<double>(credit)
                                             : 0;
  return capacity > 0 ? in_flight / capacity : in_flight;
}

// A node's price for this request: its live bid when it made one, else what it advertises.
double price_of(const Match& m, const Request& r) {
  if (r.bids && !r.bids->empty())
    if (auto it = r.bids->find(m.node->key); it != r.bids->end()) return it->second.input_per_1k + it->second.output_per_1k;
  return m.price;
}

// A node too busy to keep its prefixes: above max_load of a capacity it declared, or, either
// way, more than 1.5 times the candidates' mean in flight (plus one), so affinity never piles
// everything onto one node.
bool saturated(const Node& node, const std::vector<Match>& able, double max_load) {
  auto in_flight = static_cast<double>(node.stats.in_flight());
  if (node.max_concurrency > 0 && in_flight / static_cast<double>(node.max_concurrency) >= max_load) return true;
  double total = 0;
  for (const auto& m : able) total += static_cast<double>(m.node->stats.in_flight());
  return in_flight > 1.5 * total / static_cast<double>(able.size()) + 1;
}

// The largest of each term over the candidates, for "balanced" (found while the rows are built).
struct Maxima {
  double ttft = 0, load = 0, price = 0;
};

std::vector<Row> rows_of(const std::vector<Match>& able, const Request& r, Maxima& max) {
  // Read only what the policy uses: at 1,000 candidates every load shows.
  bool balanced = r.policy == Policy::kBalanced;
  bool wants_ttft = balanced || r.policy == Policy::kLatency || r.policy == Policy::kPrice || r.policy == Policy::kAuction;
  bool wants_load = balanced || r.policy == Policy::kLeastLoaded;
  bool wants_tps = r.policy == Policy::kThroughput;
  // Filled in place, field by field: building a Row aside and copying it in stalled every
  // candidate on store forwarding (its three flags written as bytes, read back as one vector).
  std::vector<Row> rows(able.size());
  double best_tps = -1;
  // Every pair shares the breaker's window (one config): its epoch once, not per candidate.
  std::int64_t epoch = balanced && !able.empty() ? able.front().stats->window_epoch(r.now) : 0;
  std::uint64_t client_region = plexus::region_hash(r.region);
  for (std::size_t i = 0; i < able.size(); ++i) {
    const Match& m = able[i];
    const ModelStats& st = *m.stats;
    Row& row = rows[i];
    row.index = i;
    row.available = st.available(r.now) && m.node->stats.ready();
    row.in_region = client_region == 0 || m.region_hash == client_region;
    row.hot = st.hot();
    // Not measured yet (a node that just joined): better than any measured, so it gets its first
    // request and a measurement; ties would keep it behind a known node forever.
    row.ttft = wants_ttft ? std::max(0.0, st.predicted_ttft_ms(r.now)) : 0;
    row.load = wants_load ? load_of(*m.node) : 0;
    row.price = price_of(m, r);
    row.tps = wants_tps ? st.tokens_per_second() : 0;
    row.errors = balanced ? st.error_ratio_in(epoch) : 0;
    best_tps = std::max(best_tps, row.tps);
    max.ttft = std::max(max.ttft, row.ttft);
    max.load = std::max(max.load, row.load);
    max.price = std::max(max.price, row.price);
  }
  if (wants_tps)
    for (auto& row : rows)
      if (row.tps < 0) row.tps = std::max(0.0, best_tps) + 1;
  return rows;
}

// "balanced": each term divided by its largest value among the candidates, so every term is
// 0..1 and the weights say how much each matters.
void score_balanced(std::vector<Row>& rows, const Maxima& max, const Weights& w, bool has_region) {
  // Each weight divided by its term's largest value once, not each term per candidate.
  auto per_unit = [](double weight, double largest) { return largest > 0 ? weight / largest : 0; };
  double ttft_w = per_unit(w.ttft, max.ttft), load_w = per_unit(w.load, max.load), price_w = per_unit(w.price, max.price);
  for (auto& r : rows)
    r.key = ttft_w * r.ttft + load_w * r.load + w.hot * (r.hot ? 0 : 1) + price_w * r.price +
            w.region * (has_region && !r.in_region ? 1 : 0) + w.reliability * r.errors;
}

}  // namespace

std::optional<Policy> policy_named(std::string_view name) {
  for (Policy p : {Policy::kBalanced, Policy::kLatency, Policy::kPrice, Policy::kThroughput, Policy::kLeastLoaded,
                   Policy::kRoundRobin, Policy::kAuction})
    if (name == name_of(p)) return p;
  return std::nullopt;
}

const char* name_of(Policy policy) {
  switch (policy) {
    case Policy::kBalanced: return "balanced";
    case Policy::kLatency: return "latency";
    case Policy::kPrice: return "price";
    case Policy::kThroughput: return "throughput";
    case Policy::kLeastLoaded: return "least_loaded";
    case Policy::kRoundRobin: return "round_robin";
    case Policy::kAuction: return "auction";
  }
  return "balanced";
}

std::vector<std::size_t> rank(const std::vector<Match>& able, const Request& request) {
  // One candidate has one order: nothing to read of its stats (the common case of a router in
  // front of one backend, and of a request that names its node).
  if (able.size() <= 1) return std::vector<std::size_t>(able.size(), 0);
  static const Weights kDefaultWeights;
  Maxima max;
  auto rows = rows_of(able, request, max);
  const Weights& w = request.weights ? *request.weights : kDefaultWeights;
  bool balanced = request.policy == Policy::kBalanced;
  auto cold_ms = static_cast<double>(request.cold_start.count());
  switch (request.policy) {
    case Policy::kBalanced: score_balanced(rows, max, w, !request.region.empty()); break;
    case Policy::kLatency:
      for (auto& r : rows) r.key = r.ttft + (r.hot ? 0 : cold_ms);
      break;
    case Policy::kPrice:
      for (auto& r : rows) r.key = r.price;
      break;
    case Policy::kThroughput:
      for (auto& r : rows) r.key = -r.tps;
      break;
    case Policy::kLeastLoaded:
      for (auto& r : rows) r.key = r.load;
      break;
    case Policy::kAuction: {
      // Each node bids its advertised price; a bid whose predicted TTFT misses the request's
      // bound loses to every bid that meets it. Equal bids: the node id decides (the same
      // winner on every loop, every time), not arrival order.
      auto bound = static_cast<double>(request.latency_bound.count());
      for (auto& r : rows) r.key = r.price + (bound > 0 && r.ttft > bound ? 1e12 : 0);
      break;
    }
    case Policy::kRoundRobin: {
      // One ticket per decision, shared by every loop (the first candidate's counter): each
      // decision starts one further along.
      if (!able.empty()) {
        auto start = able.front().model->stats->next_round_robin() % rows.size();
        for (auto& r : rows) r.key = static_cast<double>((r.index + rows.size() - start) % rows.size());
      }
      break;
    }
  }
  // Nodes that can take a request first; then, except where "balanced" weighs them itself, the
  // client's region and hot models; then the policy; ties in registry order (and, for price,
  // the faster first).
  // One number per candidate carries the partitions (each worth more than any policy key) and the
  // policy's key, so the comparison a sort makes a thousand times is one or two loads.
  for (auto& r : rows) {
    double partitions = (r.available ? 0 : 8e12) + (!balanced && !r.in_region ? 4e12 : 0) +
                        (!balanced && request.policy != Policy::kLatency && !r.hot ? 2e12 : 0);
    r.key += partitions;
  }
  auto before = [&](std::size_t x, std::size_t y) {
    const Row& a = rows[x];
    const Row& b = rows[y];
    if (a.key != b.key) return a.key < b.key;
    if (request.policy == Policy::kPrice && a.ttft != b.ttft) return a.ttft < b.ttft;
    if (request.policy == Policy::kAuction) return able[x].node->id < able[y].node->id;
    return x < y;
  };
  // Only the first few are ever tried (a request makes a bounded number of attempts): with
  // 1,000 candidates, ordering those few is a fraction of sorting them all. The rest follow in
  // registry order.
  std::vector<std::size_t> order(rows.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::size_t head = std::min(order.size(), kRanked);
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(head), order.end(), before);
  if (head < order.size()) {
    std::vector<bool> ranked(order.size());
    for (std::size_t k = 0; k < head; ++k) ranked[order[k]] = true;
    std::size_t next = head;
    for (std::size_t i = 0; i < ranked.size(); ++i)
      if (!ranked[i]) order[next++] = i;
  }
  // Sticky until saturated: the node holding the prefix's KV cache goes first while it can take
  // more, not weighed into a sum that would pile everything onto one node.
  if (request.affinity) {
    auto it = std::find_if(order.begin(), order.end(), [&](std::size_t i) { return able[i].node->key == request.affinity; });
    if (it != order.end() && rows[*it].available && !saturated(*able[*it].node, able, request.affinity_max_load))
      std::rotate(order.begin(), it, it + 1);
  }
  return order;
}

}  // namespace plexus::routing
