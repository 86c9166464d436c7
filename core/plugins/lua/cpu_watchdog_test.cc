// The CPU watchdog: it stops work that spins past its limit, on the work's own thread; it does not
// count time the thread spends asleep; a scope cannot be nested in another; and it sleeps while
// nothing is armed, woken by the next scope.
#include "plugins/lua/cpu_watchdog.hpp"

#include <gtest/gtest.h>

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

namespace plexus::lua {
namespace {

using namespace std::chrono_literals;

struct Expiry {
  std::atomic<int> count{0};
  std::atomic<bool> on_own_thread{true};
  pthread_t owner = pthread_self();
};

void note_expiry(void* context) {
  auto& e = *static_cast<Expiry*>(context);
  if (!pthread_equal(pthread_self(), e.owner)) e.on_own_thread = false;
  e.count.fetch_add(1, std::memory_order_relaxed);
}

// Spins until told to stop; the loop is what an interpreter's would be, with nothing to check but
// the flag the handler sets. A broken watchdog fails the test (after a minute) instead of hanging it.
void spin_until_expired(const Expiry& e) {
  auto give_up = std::chrono::steady_clock::now() + 60s;
  while (e.count.load(std::memory_order_relaxed) == 0) {
    if (std::chrono::steady_clock::now() > give_up) {
      ADD_FAILURE() << "never told to stop";
      return;
    }
  }
}

// Spins, unarmed, for many of the watchdog's ticks.
void spin_for(std::chrono::milliseconds how_long) {
  auto until = std::chrono::steady_clock::now() + how_long;
  while (std::chrono::steady_clock::now() < until) {
  }
}

TEST(CpuWatchdog, WorkThatSpinsPastItsLimitIsToldOnItsOwnThread) {
  Expiry e;
  {
    CpuBudgetScope scope(5ms, note_expiry, &e);
    spin_until_expired(e);  // without the watchdog: forever
  }
  EXPECT_GE(e.count.load(), 1);
  EXPECT_TRUE(e.on_own_thread.load());
}

TEST(CpuWatchdog, SleepsWhenNothingIsArmedAndWakesForTheNextRunaway) {
  {
    Expiry started;
    CpuBudgetScope scope(5ms, note_expiry, &started);  // the watchdog runs from the first scope on
  }
  // After a second with nothing armed it stops ticking (a broken watchdog fails here, not hangs).
  auto give_up = std::chrono::steady_clock::now() + 60s;
  while (!cpu_watchdog_asleep()) {
    ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "the idle watchdog never went to sleep";
    std::this_thread::sleep_for(10ms);
  }
  // The first call armed after that wakes it: a runaway is still stopped.
  Expiry e;
  {
    CpuBudgetScope scope(5ms, note_expiry, &e);
    spin_until_expired(e);
  }
  EXPECT_GE(e.count.load(), 1);
}

TEST(CpuWatchdog, TimeAsleepIsNotCpuTime) {
  Expiry e;
  {
    CpuBudgetScope scope(2ms, note_expiry, &e);
    std::this_thread::sleep_for(100ms);  // 50 limits of wall time, almost no CPU
  }
  EXPECT_EQ(e.count.load(), 0);
}

TEST(CpuWatchdog, WorkThatEndedIsToldNothingMore) {
  // While armed and over its limit the work is signalled at every tick; once the scope closes, the
  // signals stop, also one already on its way (it carries the ended call's id).
  Expiry e;
  {
    CpuBudgetScope scope(2ms, note_expiry, &e);
    spin_until_expired(e);
  }
  int told = e.count.load();
  spin_for(50ms);
  EXPECT_EQ(e.count.load(), told);
}

TEST(CpuWatchdog, ANewScopeStartsItsOwnCount) {
  // Scopes on one thread, each well within its limit, however many: the CPU time of one is not
  // charged to the next.
  Expiry e;
  auto until = std::chrono::steady_clock::now() + 50ms;
  while (std::chrono::steady_clock::now() < until) CpuBudgetScope scope(5ms, note_expiry, &e);
  EXPECT_EQ(e.count.load(), 0);
}

TEST(CpuWatchdog, ANestedScopeIsRefusedAndTheOuterOneStillWatched) {
  Expiry outer, inner;
  {
    CpuBudgetScope outer_scope(5ms, note_expiry, &outer);
    EXPECT_THROW(CpuBudgetScope(5ms, note_expiry, &inner), std::logic_error);
    spin_until_expired(outer);  // the refused scope changed nothing
  }
  EXPECT_GE(outer.count.load(), 1);
  EXPECT_EQ(inner.count.load(), 0);
  Expiry after;
  CpuBudgetScope next(5ms, note_expiry, &after);  // closed, the outer one leaves the thread free
}

TEST(CpuWatchdog, EachThreadIsWatchedOnItsOwn) {
  Expiry spinning_e;
  Expiry sleeping_e;
  std::thread spinning([&] {
    spinning_e.owner = pthread_self();
    CpuBudgetScope scope(5ms, note_expiry, &spinning_e);
    spin_until_expired(spinning_e);
  });
  std::thread sleeping([&] {
    sleeping_e.owner = pthread_self();
    CpuBudgetScope scope(5ms, note_expiry, &sleeping_e);
    std::this_thread::sleep_for(100ms);
  });
  spinning.join();
  sleeping.join();
  EXPECT_TRUE(spinning_e.on_own_thread.load());
  EXPECT_EQ(sleeping_e.count.load(), 0);
}

}  // namespace
}  // namespace plexus::lua
