#include "metering/request_meter.hpp"

namespace plexus::metering {

RequestMeter::~RequestMeter() {
  if (!settled_ && budget_ && reserved_ != 0) Budgets::spend(*budget_, -reserved_);
}

bool RequestMeter::admit() const {
  if (!budget_) return true;
  return Budgets::left(*budget_) > 0;
}

bool RequestMeter::affordable() const {
  return !budget_ || Budgets::left(*budget_) >= cost_of(price_, prompt_estimate_, 1);
}

void RequestMeter::reserve(double amount) {
  if (!budget_ || amount == 0) return;
  Budgets::spend(*budget_, amount);
  reserved_ += amount;
}

bool RequestMeter::take_token() {
  if (budget_) {
    // The prompt is paid with the first token; then each token its own price.
    double marginal = price_.output_per_1k / 1000.0 + (delivered_ == 0 ? cost_of(price_, prompt_estimate_, 0) : 0);
    reserve(marginal);
    if (Budgets::left(*budget_) < 0) {
      reserve(-marginal);
      return false;
    }
  }
  ++delivered_;
  return true;
}

Charge RequestMeter::settle(const Usage& usage, bool complete, bool answered) {
  if (settled_) return charge_;
  Charge c;
  c.price = price_;
  if (answered) {
    c.prompt_tokens = usage.known ? usage.prompt_tokens : prompt_estimate_;
    // The backend's count when the client got everything; else what reached the client.
    c.completion_tokens = usage.known && complete ? usage.completion_tokens : delivered_;
    c.estimated = !usage.known || !complete;
    c.cost = cost_of(price_, c.prompt_tokens, c.completion_tokens);
  }
  if (budget_) Budgets::spend(*budget_, c.cost - reserved_);
  reserved_ = c.cost;
  settled_ = true;
  charge_ = c;
  return c;
}

}  // namespace plexus::metering
