// Budgets and rate limits are looked up per request by key id: nothing before the first entry
// (no lock taken then), each key's own entry after, whether it came from the config or later.
#include <gtest/gtest.h>

#include "metering/meter.hpp"
#include "metering/rate_limits.hpp"

namespace plexus::metering {
namespace {

TEST(BudgetLookup, NothingUntilAKeyHasABudgetThenThatKeysOwn) {
  Budgets budgets;
  EXPECT_EQ(budgets.find("a"), nullptr);
  budgets.set("a", 5.0, 1.5);
  ASSERT_NE(budgets.find("a"), nullptr);
  EXPECT_DOUBLE_EQ(Budgets::left(*budgets.find("a")), 3.5);
  EXPECT_EQ(budgets.find("b"), nullptr);
  budgets.change("b", 2.0);  // a reload gives a key its first budget
  ASSERT_NE(budgets.find("b"), nullptr);
  EXPECT_DOUBLE_EQ(Budgets::left(*budgets.find("b")), 2.0);
}

TEST(RateLimitLookup, NothingUntilAKeyHasLimitsThenThatKeysOwn) {
  RateLimits limits;
  EXPECT_EQ(limits.find("a"), nullptr);
  limits.set("a", 60, 1000);
  ASSERT_NE(limits.find("a"), nullptr);
  EXPECT_EQ(limits.find("a")->rpm, 60);
  EXPECT_EQ(limits.find("b"), nullptr);
}

}  // namespace
}  // namespace plexus::metering
