#include "metering/meter.hpp"

namespace plexus::metering {

double cost_of(const Price& price, std::int64_t prompt_tokens, std::int64_t completion_tokens) {
  return static_cast<double>(prompt_tokens) / 1000.0 * price.input_per_1k +
         static_cast<double>(completion_tokens) / 1000.0 * price.output_per_1k;
}

std::int64_t estimate_tokens(std::size_t chars) { return static_cast<std::int64_t>((chars + 3) / 4); }

void Budgets::set(const std::string& key_id, double budget, double already_spent) {
  std::unique_lock lock(mu_);
  auto& e = entries_[key_id];
  if (!e) e = std::make_unique<Entry>();
  e->key_id = key_id;
  e->budget = budget;
  e->spent_micros.store(micros(already_spent), std::memory_order_relaxed);
  any_.store(true, std::memory_order_release);
}

void Budgets::change(const std::string& key_id, double budget) {
  std::unique_lock lock(mu_);
  auto& e = entries_[key_id];
  if (!e) {
    e = std::make_unique<Entry>();
    e->key_id = key_id;
  }
  e->budget.store(budget, std::memory_order_relaxed);
  any_.store(true, std::memory_order_release);
}

std::vector<Budgets::Entry*> Budgets::entries() const {
  std::shared_lock lock(mu_);
  std::vector<Entry*> out;
  for (const auto& [id, e] : entries_) out.push_back(e.get());
  return out;
}

Budgets::Entry* Budgets::find(const std::string& key_id) const {
  if (!any_.load(std::memory_order_acquire)) return nullptr;
  std::shared_lock lock(mu_);
  auto it = entries_.find(key_id);
  return it == entries_.end() ? nullptr : it->second.get();
}

}  // namespace plexus::metering
