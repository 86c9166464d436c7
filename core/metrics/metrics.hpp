#pragma once
// Prometheus metrics (GET /metrics, the text exposition format). Each event loop counts what its
// requests did in its own shard; a scrape merges the shards and adds what it reads live (nodes,
// queues, the ledger). The only lock a request takes is its own loop's shard's, which nothing
// but a scrape ever contends. Labels are bounded by the config and the nodes (model, node,
// status, plugin): never a request or a key.
#include <array>
#include <deque>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace plexus::metrics {

// Bucket upper bounds, in seconds.
inline constexpr std::array<double, 14> kLatencyBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                            1,     2.5,  5,     10,   30,  60,  120};
inline constexpr std::array<double, 12> kOverheadBuckets = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                             0.005,   0.01,   0.025,   0.05,   0.1,   0.25};

template <std::size_t N>
struct Histogram {
  std::array<std::uint64_t, N> buckets{};  // observations <= each bound (not cumulative here)
  std::uint64_t count = 0;
  double sum = 0;
  void observe(double seconds, const std::array<double, N>& bounds);
  void add(const Histogram& other);
};

// What one request did, as metrics count it. Views into the exchange's own strings, alive for the
// call: a request that adds no new label value allocates nothing here.
struct RequestSample {
  std::string_view model;
  std::string_view node;  // "-": none was reached
  int status = 0;
  double total_s = 0;
  double ttft_s = -1;      // -1: no first byte
  double overhead_s = -1;  // -1: not measured (no node answered)
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  double cost = 0;
  std::string_view request_id;   // for the dashboard's recent errors (never a metric label)
  std::string_view asked_model;  // the model the client named, for the recent errors
  std::string_view error_code;
};

// A request that failed, as the dashboard lists it: no prompt, no key.
struct ErrorEvent {
  std::int64_t at_ms = 0;  // Unix time
  std::string request_id, model, node, code;
  int status = 0;
};

class Shard {
 public:
  void request(const RequestSample& s);
  void plugin_error(const std::string& plugin);

 private:
  friend class Registry;
  // Everything counted per model, found with one look-up.
  struct ModelCounts {
    Histogram<kLatencyBuckets.size()> total, ttft;
    std::uint64_t prompt_tokens = 0, completion_tokens = 0;
    double cost = 0;
    void add(const ModelCounts& other);
  };
  mutable std::mutex mu_;
  // Keyed by owned strings, looked up by views (std::less<>): no allocation once a label is known.
  std::map<std::tuple<std::string, std::string, int>, std::uint64_t, std::less<>> requests_;  // model, node, status
  std::map<std::string, ModelCounts, std::less<>> models_;
  Histogram<kOverheadBuckets.size()> overhead_;
  std::map<std::string, std::uint64_t> plugin_errors_;
  std::deque<ErrorEvent> errors_;  // the latest kKeptErrors
};

inline constexpr std::size_t kKeptErrors = 50;

// Writes the exposition format: one family at a time, label values escaped.
class Writer {
 public:
  void family(const std::string& name, const char* type, const char* help);
  void sample(const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels, double value);
  template <std::size_t N>
  void histogram(const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels,
                 const Histogram<N>& h, const std::array<double, N>& bounds);
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Registry {
 public:
  explicit Registry(std::size_t loops);
  Shard& shard(std::size_t loop) { return *shards_[loop]; }
  // The shards merged, then what `live` writes (gauges read at scrape time).
  std::string render(const std::function<void(Writer&)>& live) const;
  // For the dashboard: requests by serving node ("-" left out), and the latest errors, newest first.
  std::map<std::string, std::uint64_t> requests_by_node() const;
  std::vector<ErrorEvent> recent_errors() const;

 private:
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace plexus::metrics
