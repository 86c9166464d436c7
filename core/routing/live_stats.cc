#include "routing/live_stats.hpp"

#include <algorithm>
#include <cmath>

namespace plexus {
namespace {

constexpr double kFirstBound = 0.25;  // ms
constexpr double kGrowth = 1.25;

std::int64_t ns(std::chrono::steady_clock::time_point t) { return t.time_since_epoch().count(); }

// A window's slot is reused two windows later: the first writer of the new window claims it and
// clears it. A sample racing that claim may land in the old counts or be cleared: statistics
// tolerate it, and nothing blocks.
template <class Slot, class Clear>
Slot& claim(std::array<Slot, 2>& slots, std::int64_t epoch, Clear clear) {
  Slot& slot = slots[static_cast<std::size_t>(epoch) % 2];
  std::int64_t seen = slot.epoch.load(std::memory_order_acquire);
  if (seen != epoch && seen < epoch && slot.epoch.compare_exchange_strong(seen, epoch)) clear(slot);
  return slot;
}

}  // namespace

std::size_t LatencyWindow::bucket_of(double ms) {
  if (!(ms > kFirstBound)) return 0;
  auto b = static_cast<std::size_t>(std::ceil(std::log(ms / kFirstBound) / std::log(kGrowth)));
  return std::min(b, kBuckets - 1);
}

double LatencyWindow::upper_bound(std::size_t bucket) {
  static const auto bounds = [] {
    std::array<double, kBuckets> b{};
    for (std::size_t i = 0; i < kBuckets; ++i) b[i] = kFirstBound * std::pow(kGrowth, static_cast<double>(i));
    return b;
  }();
  return bounds[std::min(bucket, kBuckets - 1)];
}

LatencyWindow::Slot& LatencyWindow::slot_for(std::int64_t epoch) {
  return claim(slots_, epoch, [](Slot& s) {
    for (auto& c : s.counts) c.store(0, std::memory_order_relaxed);
  });
}

void LatencyWindow::record(double ms, Clock::time_point now) {
  slot_for(epoch_of(now)).counts[bucket_of(ms)].fetch_add(1, std::memory_order_relaxed);
  // After the count: a reader that sees this bump sees the count too, and caches nothing stale.
  records_.fetch_add(1, std::memory_order_release);
}

std::uint64_t LatencyWindow::count(Clock::time_point now) const {
  std::int64_t epoch = epoch_of(now);
  std::uint64_t n = 0;
  for (const auto& s : slots_) {
    std::int64_t e = s.epoch.load(std::memory_order_acquire);
    if (e != epoch && e != epoch - 1) continue;
    for (const auto& c : s.counts) n += c.load(std::memory_order_relaxed);
  }
  return n;
}

std::uint64_t LatencyWindow::merged(Clock::time_point now, std::array<std::uint64_t, kBuckets>& counts) const {
  std::int64_t epoch = epoch_of(now);
  std::uint64_t n = 0;
  for (const auto& s : slots_) {
    std::int64_t e = s.epoch.load(std::memory_order_acquire);
    if (e != epoch && e != epoch - 1) continue;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      std::uint64_t c = s.counts[i].load(std::memory_order_relaxed);  // once: it may move meanwhile
      counts[i] += c;
      n += c;
    }
  }
  return n;
}

std::uint64_t LatencyWindow::bucket_at(const std::array<std::uint64_t, kBuckets>& counts, std::uint64_t n, double p) {
  if (n == 0) return kNoBucket;
  auto rank = static_cast<std::uint64_t>(std::ceil(std::clamp(p, 0.0, 1.0) * static_cast<double>(n)));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += counts[i];
    if (seen >= std::max<std::uint64_t>(rank, 1)) return i;
  }
  return kBuckets - 1;
}

double LatencyWindow::percentile(double p, Clock::time_point now) const {
  std::array<std::uint64_t, kBuckets> counts{};
  std::uint64_t n = merged(now, counts);
  return value_of(bucket_at(counts, n, p));
}

LatencyWindow::Median95 LatencyWindow::median_and_p95(Clock::time_point now) const {
  std::uint64_t key = std::uint64_t{records_.load(std::memory_order_acquire)} << 32 |
                      (static_cast<std::uint64_t>(epoch_of(now)) & 0xffff) << 16;
  std::uint64_t cached = cached_.load(std::memory_order_relaxed);
  if ((cached & ~std::uint64_t{0xffff}) == key && (cached >> 8 & 0xff) != kNotCached)
    return {value_of(cached >> 8 & 0xff), value_of(cached & 0xff)};
  std::array<std::uint64_t, kBuckets> counts{};
  std::uint64_t n = merged(now, counts);
  std::uint64_t p50 = bucket_at(counts, n, 0.5), p95 = bucket_at(counts, n, 0.95);
  cached_.store(key | p50 << 8 | p95, std::memory_order_relaxed);
  return {value_of(p50), value_of(p95)};
}

void Ewma::add(double sample) {
  double old = value_.load(std::memory_order_relaxed);
  double next;
  do {
    next = old < 0 ? sample : old + alpha_ * (sample - old);
  } while (!value_.compare_exchange_weak(old, next, std::memory_order_relaxed));
}

ModelStats::ModelStats(const BreakerSettings& breaker) : settings_(breaker), ttft_(breaker.window), total_(breaker.window) {}

ModelStats::Counts& ModelStats::counts_for(Clock::time_point now) {
  std::int64_t epoch = ns(now) / std::chrono::nanoseconds(settings_.window).count();
  return claim(counts_, epoch, [](Counts& c) {
    c.attempts.store(0, std::memory_order_relaxed);
    c.failures.store(0, std::memory_order_relaxed);
  });
}

std::int64_t ModelStats::window_epoch(Clock::time_point now) const {
  return ns(now) / std::chrono::nanoseconds(settings_.window).count();
}

double ModelStats::error_ratio(Clock::time_point now) const { return error_ratio_in(window_epoch(now)); }

double ModelStats::error_ratio_in(std::int64_t epoch) const {
  std::uint64_t attempts = 0, failures = 0;
  for (const auto& c : counts_) {
    std::int64_t e = c.epoch.load(std::memory_order_acquire);
    if (e != epoch && e != epoch - 1) continue;
    attempts += c.attempts.load(std::memory_order_relaxed);
    failures += c.failures.load(std::memory_order_relaxed);
  }
  return failures == 0 ? 0 : static_cast<double>(failures) / static_cast<double>(attempts);  // no division in the common case
}

ModelStats::Breaker ModelStats::breaker(Clock::time_point now) const {
  auto state = static_cast<Breaker>(state_.load());
  if (state == Breaker::kOpen && ns(now) >= open_until_ns_.load()) return Breaker::kHalfOpen;
  return state;
}

ModelStats::Clock::time_point ModelStats::cooldown_until() const {
  return Clock::time_point(Clock::duration(open_until_ns_.load(std::memory_order_relaxed)));
}

double ModelStats::own_ttft_ms(Clock::time_point now, std::chrono::milliseconds stale_after) const {
  if (ns(now) - last_answer_ns_.load(std::memory_order_relaxed) > std::chrono::nanoseconds(stale_after).count()) return -1;
  return ttft_ewma_.value();
}

double ModelStats::predicted_ttft_ms(Clock::time_point now, std::chrono::milliseconds stale_after) const {
  double own = own_ttft_ms(now, stale_after);
  if (own >= 0) return own;
  return ns(now) < peer_until_ns_.load(std::memory_order_relaxed) ? peer_ttft_ms_.load(std::memory_order_relaxed) : -1;
}

void ModelStats::set_peer_ttft(double ms, Clock::time_point until) {
  peer_ttft_ms_.store(ms, std::memory_order_relaxed);
  peer_until_ns_.store(ns(until), std::memory_order_relaxed);
}

bool ModelStats::available(Clock::time_point now) const {
  switch (breaker(now)) {
    case Breaker::kClosed: return ns(now) >= open_until_ns_.load(std::memory_order_relaxed);  // a 429's pause
    case Breaker::kOpen: return false;
    case Breaker::kHalfOpen: return !probe_out_.load();
  }
  return true;
}

bool ModelStats::begin_attempt(Clock::time_point now) {
  Breaker state = breaker(now);
  if (state == Breaker::kOpen) return false;
  if (state == Breaker::kHalfOpen) {
    bool expected = false;
    if (!probe_out_.compare_exchange_strong(expected, true)) return false;  // one probe at a time
    state_.store(static_cast<int>(Breaker::kHalfOpen));
  }
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void ModelStats::open(Clock::time_point now) {
  std::int64_t until = ns(now + settings_.cooldown);
  std::int64_t seen = open_until_ns_.load();
  while (seen < until && !open_until_ns_.compare_exchange_weak(seen, until)) {
  }
  state_.store(static_cast<int>(Breaker::kOpen));
  probe_out_.store(false);
}

void ModelStats::open_as_peer_saw(Clock::time_point until) {
  if (static_cast<Breaker>(state_.load()) != Breaker::kClosed) return;  // open or probing already
  // The deadline first, then the state: a loop that sees "open" must see its deadline too, or it
  // would take it for a cooldown that ended and send a probe.
  std::int64_t target = ns(until);
  std::int64_t seen = open_until_ns_.load();
  while (seen < target && !open_until_ns_.compare_exchange_weak(seen, target)) {
  }
  int closed = static_cast<int>(Breaker::kClosed);
  state_.compare_exchange_strong(closed, static_cast<int>(Breaker::kOpen));
}

void ModelStats::record(const AttemptResult& r, Clock::time_point now) {
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  Counts& counts = counts_for(now);
  counts.attempts.fetch_add(1, std::memory_order_relaxed);
  if (r.ttft_ms >= 0) {
    ttft_.record(r.ttft_ms, now);
    ttft_ewma_.add(r.ttft_ms);
    last_answer_ns_.store(ns(now), std::memory_order_relaxed);
  }
  if (r.total_ms >= 0) total_.record(r.total_ms, now);
  if (r.tokens_per_second > 0) tps_ewma_.add(r.tokens_per_second);
  if (r.retry_after.count() > 0) {  // the backend's own word: leave it alone that long
    std::int64_t until = ns(now + r.retry_after);
    std::int64_t seen = open_until_ns_.load();
    while (seen < until && !open_until_ns_.compare_exchange_weak(seen, until)) {
    }
  }
  bool was_probe = static_cast<Breaker>(state_.load()) == Breaker::kHalfOpen;
  if (!r.counts_as_failure) {
    consecutive_failures_.store(0, std::memory_order_relaxed);
    if (was_probe) {  // the probe came back well: close
      state_.store(static_cast<int>(Breaker::kClosed));
      probe_out_.store(false);
    }
    return;
  }
  counts.failures.fetch_add(1, std::memory_order_relaxed);
  int in_a_row = consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1;
  std::uint32_t attempts = counts.attempts.load(std::memory_order_relaxed);
  bool too_many = attempts >= static_cast<std::uint32_t>(settings_.min_attempts) &&
                  error_ratio(now) >= settings_.error_ratio;
  if (was_probe || in_a_row >= settings_.consecutive_failures || too_many) open(now);
}

}  // namespace plexus
