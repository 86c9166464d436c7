#pragma once
// Live statistics of one (node, model): what routing predicts from and what /v1/nodes (and,
// later, /metrics) shows. Written by every event loop that sends the pair a request and read by
// every routing decision, all without locks: counters are atomics, latencies go into windowed
// histograms of atomic buckets (no sorted copies), the predictions are EWMAs in one atomic each.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace plexus {

// Latency samples over a sliding window: two windows of `width` each (the current one and the
// one before), log-spaced buckets from 0.25 ms to about 40 minutes (each 25 % wider than the last,
// so a percentile is within 12 % of the truth). Any thread records; any thread reads.
class LatencyWindow {
 public:
  static constexpr std::size_t kBuckets = 72;
  using Clock = std::chrono::steady_clock;

  explicit LatencyWindow(std::chrono::seconds width = std::chrono::seconds(60)) : width_ns_(width.count() * 1000000000LL) {}

  void record(double ms, Clock::time_point now);
  // The p-th percentile (0..1) of the samples in the last one to two windows; -1 with none.
  double percentile(double p, Clock::time_point now) const;
  // The p50 and the p95: what a candidate and /v1/nodes show. Computed from one merge of the
  // buckets, and kept until the next sample or the next window: a routing plugin's candidates
  // read them for every node on every request, and most nodes have not changed since the last.
  struct Median95 {
    double p50 = -1;
    double p95 = -1;
  };
  Median95 median_and_p95(Clock::time_point now) const;
  std::uint64_t count(Clock::time_point now) const;

  static std::size_t bucket_of(double ms);
  static double upper_bound(std::size_t bucket);  // ms

 private:
  struct Slot {
    std::atomic<std::int64_t> epoch{-1};
    std::array<std::atomic<std::uint32_t>, kBuckets> counts{};
  };
  Slot& slot_for(std::int64_t epoch);
  // The last one to two windows' counts, added up; returns how many samples they hold.
  std::uint64_t merged(Clock::time_point now, std::array<std::uint64_t, kBuckets>& counts) const;
  static constexpr std::uint64_t kNoBucket = 0xff;   // no samples
  static constexpr std::uint64_t kNotCached = 0xfe;  // cached_'s p50 bucket before any answer
  static std::uint64_t bucket_at(const std::array<std::uint64_t, kBuckets>& counts, std::uint64_t n, double p);
  static double value_of(std::uint64_t bucket) { return bucket == kNoBucket ? -1 : upper_bound(bucket); }
  std::int64_t epoch_of(Clock::time_point now) const { return now.time_since_epoch().count() / width_ns_; }

  std::int64_t width_ns_;
  std::array<Slot, 2> slots_;
  // Bumped after every record()'s count: with the epoch, it says whether `cached_` still holds.
  std::atomic<std::uint32_t> records_{0};
  // median_and_p95's last answer in one word, so that loops reading it at once see all or none:
  // records_ (32 bits), the epoch's low 16 bits, the p50's and the p95's buckets (8 bits each).
  mutable std::atomic<std::uint64_t> cached_{kNotCached << 8};
  static_assert(kBuckets < kNotCached, "a bucket's index fits in 8 bits, beside kNotCached and kNoBucket");
};

// A moving average that forgets: each sample moves it `alpha` of the way (any thread).
class Ewma {
 public:
  explicit Ewma(double alpha) : alpha_(alpha) {}
  void add(double sample);
  double value() const { return value_.load(std::memory_order_relaxed); }  // < 0: no sample yet

 private:
  double alpha_;
  std::atomic<double> value_{-1};
};

// When to stop sending a (node, model) requests, and when to try again.
struct BreakerSettings {
  int consecutive_failures = 5;   // open after this many failures in a row
  double error_ratio = 0.5;       // or when this share of the window's attempts failed
  int min_attempts = 20;          // (with at least this many attempts in the window)
  std::chrono::seconds window{30};
  std::chrono::milliseconds cooldown{10000};  // open this long, then one probe request
};

// What one attempt at a (node, model) came to.
struct AttemptResult {
  bool ok = false;            // answered (a client error the backend reported counts as ok)
  bool counts_as_failure = false;  // 5xx, timeout, refused, cut off: the node's fault
  double ttft_ms = -1;        // first chunk or whole answer; -1 if none came
  double total_ms = -1;       // -1 when it did not finish
  double tokens_per_second = -1;
  std::chrono::seconds retry_after{0};  // the backend asked for a pause (429)
};

class ModelStats {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Breaker { kClosed, kOpen, kHalfOpen };

  explicit ModelStats(const BreakerSettings& breaker = {});

  // The one writer entry points (any loop): an attempt begins (returns false when the breaker
  // lets no request through: open, or half-open with its probe already out), and its result.
  bool begin_attempt(Clock::time_point now);
  void record(const AttemptResult& result, Clock::time_point now);

  // Reads (any thread, no locks).
  bool available(Clock::time_point now) const;  // the breaker would let a request through
  Breaker breaker(Clock::time_point now) const;
  std::int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  double ttft_ewma_ms() const { return ttft_ewma_.value(); }
  // The prediction routing uses: the moving average, or "not known" (-1) when no answer came for
  // `stale_after`: a node that was slow once and then got no traffic would otherwise keep its
  // bad name forever; unknown, it gets a request and a fresh measurement.
  // With several routers (cluster), what the others measured stands in while this router has no
  // fresh answer of its own: a router that just started, or a node it has not used lately.
  double predicted_ttft_ms(Clock::time_point now, std::chrono::milliseconds stale_after = std::chrono::seconds(10)) const;
  // This router's own measure only (-1 when stale): what it tells the others.
  double own_ttft_ms(Clock::time_point now, std::chrono::milliseconds stale_after = std::chrono::seconds(10)) const;
  // The others' measure (cluster sync), valid until `until`. Any thread.
  void set_peer_ttft(double ms, Clock::time_point until);
  double tokens_per_second() const { return tps_ewma_.value(); }
  double error_ratio(Clock::time_point now) const;  // in the breaker's window; 0 without attempts
  // The same for a window epoch computed once (window_epoch) and used for many pairs: a routing
  // decision over 1,000 candidates saves a division per candidate.
  std::int64_t window_epoch(Clock::time_point now) const;
  double error_ratio_in(std::int64_t epoch) const;
  int consecutive_failures() const { return consecutive_failures_.load(std::memory_order_relaxed); }
  Clock::time_point cooldown_until() const;
  // Another router saw this (node, model) fail (cluster): open the breaker until `until` unless
  // it is open already; the probe after it is this router's own. Any thread.
  void open_as_peer_saw(Clock::time_point until);
  const LatencyWindow& ttft() const { return ttft_; }
  // What the backend last said of this model, kept here so routing reads two flags instead of
  // the node's whole status (written by Node::apply_backend).
  bool hot() const { return hot_.load(std::memory_order_relaxed); }          // loaded in memory
  bool present() const { return present_.load(std::memory_order_relaxed); }  // the backend has it at all
  void set_backend_view(bool hot, bool present) {
    hot_.store(hot, std::memory_order_relaxed);
    present_.store(present, std::memory_order_relaxed);
  }

  // Tickets for round robin among the candidates this pair heads (any thread).
  std::uint64_t next_round_robin() { return round_robin_.fetch_add(1, std::memory_order_relaxed); }
  const LatencyWindow& total() const { return total_; }

 private:
  void open(Clock::time_point now);
  struct Counts {
    std::atomic<std::int64_t> epoch{-1};
    std::atomic<std::uint32_t> attempts{0};
    std::atomic<std::uint32_t> failures{0};
  };
  Counts& counts_for(Clock::time_point now);

  // What every routing decision reads comes first, together (one or two cache lines: a decision
  // over 1,000 candidates touches each once); the histograms, read for display, follow.
  std::atomic<std::int64_t> in_flight_{0};
  std::atomic<std::int64_t> open_until_ns_{0};  // open: until then; also a 429's Retry-After
  std::atomic<int> state_{0};  // Breaker
  std::atomic<int> consecutive_failures_{0};
  std::atomic<bool> probe_out_{false};
  std::atomic<bool> hot_{true};
  std::atomic<bool> present_{true};
  Ewma ttft_ewma_{0.2};
  Ewma tps_ewma_{0.2};
  std::atomic<std::uint64_t> round_robin_{0};
  std::atomic<std::int64_t> last_answer_ns_{0};
  std::atomic<double> peer_ttft_ms_{-1};
  std::atomic<std::int64_t> peer_until_ns_{0};
  BreakerSettings settings_;
  std::array<Counts, 2> counts_;
  LatencyWindow ttft_;
  LatencyWindow total_;
};

}  // namespace plexus
