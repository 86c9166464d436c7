// Live statistics per (node, model): windowed latency histograms, moving averages and the circuit
// breaker, driven with made-up times (no sleeping, nothing depends on the clock).
#include "routing/live_stats.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace plexus {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

const Clock::time_point t0 = Clock::time_point(seconds(1000000));

TEST(LatencyWindow, PercentilesAreWithinOneBucket) {
  LatencyWindow w(seconds(60));
  for (int i = 1; i <= 100; ++i) w.record(i, t0);  // 1..100 ms
  double p50 = w.percentile(0.5, t0), p95 = w.percentile(0.95, t0);
  EXPECT_GE(p50, 50);
  EXPECT_LE(p50, 50 * 1.25);
  EXPECT_GE(p95, 95);
  EXPECT_LE(p95, 95 * 1.25);
  EXPECT_EQ(w.count(t0), 100u);
  EXPECT_EQ(LatencyWindow(seconds(60)).percentile(0.5, t0), -1) << "no samples";
}

TEST(LatencyWindow, OldSamplesLeaveAfterTwoWindows) {
  LatencyWindow w(seconds(10));
  w.record(1000, t0);
  EXPECT_EQ(w.count(t0 + seconds(10)), 1u) << "the previous window still counts";
  w.record(5, t0 + seconds(20));
  EXPECT_EQ(w.count(t0 + seconds(20)), 1u) << "two windows later the old sample is gone";
  EXPECT_LE(w.percentile(0.99, t0 + seconds(20)), 5 * 1.25);
}

TEST(LatencyWindow, MedianAndP95AreThePercentilesAndFollowNewSamplesAndWindows) {
  LatencyWindow w(seconds(10));
  EXPECT_EQ(w.median_and_p95(t0).p50, -1) << "no samples";
  for (int i = 1; i <= 100; ++i) w.record(i, t0);
  auto first = w.median_and_p95(t0);
  EXPECT_EQ(first.p50, w.percentile(0.5, t0));
  EXPECT_EQ(first.p95, w.percentile(0.95, t0));
  EXPECT_EQ(w.median_and_p95(t0).p95, first.p95) << "asked again, unchanged";
  for (int i = 0; i < 100; ++i) w.record(1000, t0);
  auto later = w.median_and_p95(t0);
  EXPECT_EQ(later.p95, w.percentile(0.95, t0)) << "new samples are seen at once";
  EXPECT_GT(later.p95, first.p95);
  EXPECT_EQ(w.median_and_p95(t0 + seconds(10)).p95, later.p95) << "the previous window still counts";
  EXPECT_EQ(w.median_and_p95(t0 + seconds(20)).p50, -1) << "two windows on, with no new sample, none";
}

TEST(LatencyWindow, ConcurrentWritersLoseNothingWithinAWindow) {
  LatencyWindow w(seconds(60));
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t)
    writers.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) w.record(3, t0);
    });
  for (auto& t : writers) t.join();
  EXPECT_EQ(w.count(t0), 40000u);
}

TEST(Ewma, StartsAtTheFirstSampleAndMovesTowardsNewOnes) {
  Ewma e(0.5);
  EXPECT_LT(e.value(), 0);
  e.add(100);
  EXPECT_EQ(e.value(), 100);
  e.add(200);
  EXPECT_EQ(e.value(), 150);
}

AttemptResult failure() {
  AttemptResult r;
  r.counts_as_failure = true;
  return r;
}

AttemptResult success(double ttft) {
  AttemptResult r;
  r.ok = true;
  r.ttft_ms = ttft;
  r.total_ms = ttft * 2;
  return r;
}

TEST(Breaker, OpensAfterFailuresInARowHalfOpensAfterTheCooldownAndOneProbeClosesIt) {
  BreakerSettings settings;
  settings.consecutive_failures = 3;
  settings.cooldown = milliseconds(5000);
  ModelStats s(settings);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(s.begin_attempt(t0));
    s.record(failure(), t0);
  }
  EXPECT_EQ(s.breaker(t0), ModelStats::Breaker::kOpen);
  EXPECT_FALSE(s.available(t0 + milliseconds(4999)));
  EXPECT_FALSE(s.begin_attempt(t0 + milliseconds(4999)));

  auto later = t0 + milliseconds(5000);
  EXPECT_EQ(s.breaker(later), ModelStats::Breaker::kHalfOpen);
  EXPECT_TRUE(s.available(later));
  ASSERT_TRUE(s.begin_attempt(later)) << "one probe";
  EXPECT_FALSE(s.begin_attempt(later)) << "and only one";
  EXPECT_FALSE(s.available(later));
  s.record(success(10), later);
  EXPECT_EQ(s.breaker(later), ModelStats::Breaker::kClosed);
  EXPECT_TRUE(s.begin_attempt(later));
  EXPECT_TRUE(s.begin_attempt(later));
}

TEST(Breaker, AFailedProbeOpensItAgain) {
  BreakerSettings settings;
  settings.consecutive_failures = 1;
  settings.cooldown = milliseconds(1000);
  ModelStats s(settings);
  ASSERT_TRUE(s.begin_attempt(t0));
  s.record(failure(), t0);
  auto probe_time = t0 + milliseconds(1000);
  ASSERT_TRUE(s.begin_attempt(probe_time));
  s.record(failure(), probe_time);
  EXPECT_EQ(s.breaker(probe_time + milliseconds(999)), ModelStats::Breaker::kOpen);
  EXPECT_EQ(s.breaker(probe_time + milliseconds(1000)), ModelStats::Breaker::kHalfOpen);
}

TEST(Breaker, OpensOnTheErrorRatioOverTheWindow) {
  BreakerSettings settings;
  settings.consecutive_failures = 1000;
  settings.error_ratio = 0.5;
  settings.min_attempts = 10;
  ModelStats s(settings);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(s.begin_attempt(t0));
    s.record(i % 2 ? failure() : success(5), t0);  // alternating: never two in a row
  }
  EXPECT_EQ(s.breaker(t0), ModelStats::Breaker::kOpen);
  EXPECT_DOUBLE_EQ(s.error_ratio(t0), 0.5);
}

TEST(ModelStats, RecordsLatencyThroughputAndTheBackendsPause) {
  ModelStats s;
  ASSERT_TRUE(s.begin_attempt(t0));
  EXPECT_EQ(s.in_flight(), 1);
  AttemptResult r = success(40);
  r.tokens_per_second = 55;
  s.record(r, t0);
  EXPECT_EQ(s.in_flight(), 0);
  EXPECT_EQ(s.ttft_ewma_ms(), 40);
  EXPECT_EQ(s.tokens_per_second(), 55);
  ASSERT_TRUE(s.begin_attempt(t0));
  AttemptResult limited;
  limited.retry_after = seconds(30);
  s.record(limited, t0);
  EXPECT_FALSE(s.available(t0 + seconds(29))) << "a 429's Retry-After is honoured";
  EXPECT_TRUE(s.available(t0 + seconds(30)));
  EXPECT_EQ(s.breaker(t0), ModelStats::Breaker::kClosed) << "a pause the backend asked for is not a failure";
}

TEST(PeerMeasures, OtherRoutersTtftStandsInOnlyWhileThisRouterHasNoFreshAnswer) {
  ModelStats s;
  EXPECT_EQ(s.predicted_ttft_ms(t0), -1) << "nothing known";
  s.set_peer_ttft(80, t0 + milliseconds(10000));
  EXPECT_EQ(s.predicted_ttft_ms(t0), 80) << "the others' measure, while this router has none";
  EXPECT_EQ(s.own_ttft_ms(t0), -1) << "never told back as this router's own";
  EXPECT_EQ(s.predicted_ttft_ms(t0 + milliseconds(10001)), -1) << "the others' measure expires";
  ASSERT_TRUE(s.begin_attempt(t0));
  AttemptResult r;
  r.ok = true;
  r.ttft_ms = 200;
  s.record(r, t0);
  EXPECT_EQ(s.predicted_ttft_ms(t0), 200) << "a fresh answer of its own wins";
}

TEST(PeerMeasures, AnotherRoutersOpenBreakerOpensThisOneUntilThenOnly) {
  BreakerSettings settings;
  settings.cooldown = milliseconds(5000);
  ModelStats s(settings);
  s.open_as_peer_saw(t0 + milliseconds(3000));
  EXPECT_EQ(s.breaker(t0), ModelStats::Breaker::kOpen);
  EXPECT_FALSE(s.begin_attempt(t0 + milliseconds(2999)));
  EXPECT_EQ(s.breaker(t0 + milliseconds(3000)), ModelStats::Breaker::kHalfOpen) << "then this router's own probe";
}

}  // namespace
}  // namespace plexus
