#pragma once
// Metering: what a request costs, from the price fixed when it was routed and the tokens it used,
// and each key's budget, spent as answers flow. Part of the core, not a plugin: every request
// that reaches a node is metered, whatever plugins do.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "plexus/provider.hpp"

namespace plexus::metering {

// Prices are per 1K tokens; a cost is in the same currency.
double cost_of(const Price& price, std::int64_t prompt_tokens, std::int64_t completion_tokens);

// Tokens in a text (a prompt, a whole answer) when nobody counted them: about four characters
// each (an estimate, marked as such wherever it is used).
std::int64_t estimate_tokens(std::size_t chars);

// Budgets per API key, shared by every event loop. Spending is an atomic add of micro-units, so
// a loop checks and spends without a lock; the ledger (when there is one) is the durable record
// the counters start from.
class Budgets {
 public:
  struct Entry {
    std::string key_id;
    std::atomic<double> budget{0};  // currency; a key without a budget has no entry
    std::atomic<std::int64_t> spent_micros{0};
    // Several routers (cluster.redis): what the others spent beyond this router's own, as the
    // last sync saw it.
    std::atomic<std::int64_t> remote_micros{0};
  };

  void set(const std::string& key_id, double budget, double already_spent = 0);
  // A new budget for a key (a config reload); what it has spent stays.
  void change(const std::string& key_id, double budget);
  // Null when the key has no budget.
  Entry* find(const std::string& key_id) const;

  static std::int64_t micros(double amount) { return static_cast<std::int64_t>(amount * 1e6 + 0.5); }
  static double spent(const Entry& e) {
    return static_cast<double>(e.spent_micros.load(std::memory_order_relaxed) + e.remote_micros.load(std::memory_order_relaxed)) / 1e6;
  }
  // Every key with a budget (the cluster sync's thread; entries never move).
  std::vector<Entry*> entries() const;
  // What is left (may be negative: the last answer may end a little past the budget).
  static double left(const Entry& e) { return e.budget.load(std::memory_order_relaxed) - spent(e); }
  static void spend(Entry& e, double amount) { e.spent_micros.fetch_add(micros(amount), std::memory_order_relaxed); }

 private:
  // Keys come and go through the admin API while loops look them up: a reader-writer lock around
  // the map (the entries themselves never move, and their counters are atomics).
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, std::unique_ptr<Entry>> entries_;
  std::atomic<bool> any_{false};  // as RateLimits::any_: no budgets, no look-up and no lock
};

}  // namespace plexus::metering
