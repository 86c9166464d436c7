#include "metering/rate_limits.hpp"

#include <algorithm>

namespace plexus::metering {

void RateLimits::set(const std::string& key_id, std::int64_t rpm, std::int64_t tpm) {
  std::unique_lock lock(mu_);
  auto& e = entries_[key_id];
  if (!e) e = std::make_unique<Entry>();
  e->rpm = rpm;
  e->tpm = tpm;
  any_.store(true, std::memory_order_release);
}

std::vector<std::pair<std::string, RateLimits::Entry*>> RateLimits::entries() const {
  std::shared_lock lock(mu_);
  std::vector<std::pair<std::string, Entry*>> out;
  for (const auto& [id, e] : entries_) out.emplace_back(id, e.get());
  return out;
}

RateLimits::Entry* RateLimits::find(const std::string& key_id) const {
  if (!any_.load(std::memory_order_acquire)) return nullptr;
  std::shared_lock lock(mu_);
  auto it = entries_.find(key_id);
  return it == entries_.end() ? nullptr : it->second.get();
}

// The first request of a new minute resets the counters (one of them wins the exchange).
void RateLimits::roll(Entry& e, std::int64_t minute) {
  std::int64_t seen = e.minute.load(std::memory_order_acquire);
  if (seen == minute) return;
  if (e.minute.compare_exchange_strong(seen, minute, std::memory_order_acq_rel)) {
    e.requests.store(0, std::memory_order_relaxed);
    e.tokens.store(0, std::memory_order_relaxed);
  }
}

RateLimits::Decision RateLimits::admit(Entry& e, std::chrono::system_clock::time_point now) {
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  std::int64_t minute = seconds / 60;
  roll(e, minute);
  std::int64_t reset = 60 - seconds % 60;
  Decision d;
  const std::int64_t rpm = e.rpm.load(std::memory_order_relaxed), tpm = e.tpm.load(std::memory_order_relaxed);
  bool remote_now = e.remote_minute.load(std::memory_order_relaxed) == minute;
  std::int64_t others = remote_now ? e.remote_requests.load(std::memory_order_relaxed) : 0;
  std::int64_t used = e.requests.fetch_add(1, std::memory_order_relaxed) + 1 + others;
  std::int64_t tokens = e.tokens.load(std::memory_order_relaxed) + (remote_now ? e.remote_tokens.load(std::memory_order_relaxed) : 0);
  bool over_requests = rpm > 0 && used > rpm;
  bool over_tokens = tpm > 0 && tokens >= tpm;
  if (over_requests || over_tokens) {
    e.requests.fetch_sub(1, std::memory_order_relaxed);  // a refused request takes no slot
    --used;
    d.allowed = false;
    d.retry_after = std::chrono::seconds(reset);
  }
  if (rpm > 0) {
    d.headers.emplace_back("x-ratelimit-limit-requests", std::to_string(rpm));
    d.headers.emplace_back("x-ratelimit-remaining-requests", std::to_string(std::max<std::int64_t>(0, rpm - used)));
    d.headers.emplace_back("x-ratelimit-reset-requests", std::to_string(reset) + "s");
  }
  if (tpm > 0) {
    d.headers.emplace_back("x-ratelimit-limit-tokens", std::to_string(tpm));
    d.headers.emplace_back("x-ratelimit-remaining-tokens", std::to_string(std::max<std::int64_t>(0, tpm - tokens)));
    d.headers.emplace_back("x-ratelimit-reset-tokens", std::to_string(reset) + "s");
  }
  return d;
}

void RateLimits::add_tokens(Entry& e, std::int64_t tokens, std::chrono::system_clock::time_point now) {
  roll(e, std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count() / 60);
  e.tokens.fetch_add(tokens, std::memory_order_relaxed);
}

}  // namespace plexus::metering
