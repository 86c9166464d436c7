#include "nodes/node.hpp"

#include <algorithm>
#include <stdexcept>


namespace plexus {
namespace {
constexpr std::size_t kSamples = 64;
constexpr auto kCooldown = std::chrono::seconds(10);
}  // namespace

NodeStats::NodeStats(std::size_t loops)
    : ttft_(std::max<std::size_t>(loops, 1)), backend_(std::make_shared<const BackendStatus>()) {}

void NodeStats::record_ttft(std::size_t loop, double ms) {
  Ring& r = ttft_[loop];
  if (r.samples.size() < kSamples) {
    r.samples.push_back(ms);
  } else {
    r.samples[r.next] = ms;
    r.next = (r.next + 1) % kSamples;
  }
}

std::pair<double, double> NodeStats::p50_p95(std::size_t loop) const {
  const auto& samples = ttft_[loop].samples;
  if (samples.empty()) return {0, 0};
  std::vector<double> sorted = samples;
  std::sort(sorted.begin(), sorted.end());
  auto at = [&](double p) { return sorted[std::min(sorted.size() - 1, static_cast<std::size_t>(p * sorted.size()))]; };
  return {at(0.5), at(0.95)};
}

bool NodeStats::healthy(Clock::time_point now) const {
  return now.time_since_epoch().count() >= cooling_until_.load(std::memory_order_relaxed);
}

void NodeStats::record_failure(Clock::time_point now) {
  if (consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1 >= 3) cool_down_until(now + kCooldown);
}

void NodeStats::cool_down_until(Clock::time_point until) {
  auto want = until.time_since_epoch().count();
  auto seen = cooling_until_.load(std::memory_order_relaxed);
  while (seen < want && !cooling_until_.compare_exchange_weak(seen, want, std::memory_order_relaxed)) {
  }
}

void NodeStats::set_backend(BackendStatus status) {
  backend_.store(std::make_shared<const BackendStatus>(std::move(status)));
}

bool Node::serves_group(const std::string& group) const {
  return std::find(groups.begin(), groups.end(), group) != groups.end();
}

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace plexus
