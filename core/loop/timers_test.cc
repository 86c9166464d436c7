// The loop's timers: deadlines in order (equal ones in the order they were set), cancel before
// and after firing, a stale id never cancelling the timer that reused its slot, and many
// cancelled timers not piling up.
#include "loop/loop_thread.hpp"

#include <gtest/gtest.h>

#include <future>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace plexus {
namespace {

using namespace std::chrono_literals;

class Timers : public ::testing::Test {
 protected:
  template <class Fn>
  auto on_loop(Fn fn) {
    return thread_.run(std::move(fn));
  }
  LoopThread thread_;
  EventLoop& loop_ = thread_.loop();
};

TEST_F(Timers, FireInDeadlineOrderAndEqualDeadlinesInTheOrderSet) {
  std::vector<std::string> fired;
  std::promise<void> done;
  on_loop([&] {
    loop_.after(30ms, [&] { fired.push_back("c"); });
    loop_.after(10ms, [&] { fired.push_back("a"); });
    loop_.after(20ms, [&] { fired.push_back("b1"); });
    loop_.after(20ms, [&] { fired.push_back("b2"); });
    loop_.after(40ms, [&] { done.set_value(); });
    return 0;
  });
  done.get_future().wait();
  EXPECT_EQ(fired, (std::vector<std::string>{"a", "b1", "b2", "c"}));
}

TEST_F(Timers, ACancelledTimerNeverFiresAndReleasesWhatItHeld) {
  auto held = std::make_shared<int>(1);
  std::weak_ptr<int> watch = held;
  std::promise<void> done;
  bool fired = false;
  on_loop([&] {
    TimerId id = loop_.after(10ms, [&fired, held] { fired = true; });
    loop_.cancel(id);
    loop_.cancel(id);  // twice: ignored
    loop_.after(30ms, [&] { done.set_value(); });
    return 0;
  });
  held.reset();
  EXPECT_TRUE(watch.expired()) << "cancel destroys the callback and what it captured";
  done.get_future().wait();
  EXPECT_FALSE(fired);
}

TEST_F(Timers, AStaleIdDoesNotCancelTheTimerThatReusedItsSlot) {
  std::promise<void> done;
  bool second_fired = false;
  on_loop([&] {
    TimerId first = loop_.after(10ms, [] {});
    loop_.cancel(first);
    TimerId second = loop_.after(10ms, [&] { second_fired = true; });  // takes the freed slot
    EXPECT_NE(first, second);
    loop_.cancel(first);  // stale
    loop_.cancel(0);      // never an id
    loop_.after(30ms, [&] { done.set_value(); });
    return 0;
  });
  done.get_future().wait();
  EXPECT_TRUE(second_fired);
}

TEST_F(Timers, CancellingFromInsideAnotherTimerAndAfterFiringIsSafe) {
  std::promise<void> done;
  int fired = 0;
  on_loop([&] {
    TimerId victim = loop_.after(20ms, [&] { ++fired; });
    loop_.after(10ms, [&, victim] {
      loop_.cancel(victim);
      TimerId self_later = loop_.after(0ms, [&] { ++fired; });
      (void)self_later;
    });
    loop_.after(40ms, [&] { done.set_value(); });
    return 0;
  });
  done.get_future().wait();
  EXPECT_EQ(fired, 1) << "the victim never ran; the one armed from a callback did";
}

TEST_F(Timers, ManyArmedAndCancelledTimersStillLeaveTheRightOnesToFire) {
  std::promise<void> done;
  int fired = 0;
  on_loop([&] {
    // Like requests: each arms a long deadline and cancels it when done.
    for (int i = 0; i < 100000; ++i) loop_.cancel(loop_.after(60s, [] {}));
    for (int i = 0; i < 10; ++i) loop_.after(std::chrono::milliseconds(i), [&] { ++fired; });
    loop_.after(30ms, [&] { done.set_value(); });
    return 0;
  });
  done.get_future().wait();
  EXPECT_EQ(fired, 10);
}

// now() is read once per event: the same all through one piece of work, later for the next, and
// a timer set from it is due that long after it.
TEST_F(Timers, NowIsTheCurrentEventsStartAndTimersCountFromIt) {
  auto [first, again] = on_loop([&] {
    auto a = loop_.now();
    std::this_thread::sleep_for(2ms);
    return std::pair{a, loop_.now()};
  });
  EXPECT_EQ(first, again) << "one event, one time";
  auto next = on_loop([&] { return loop_.now(); });
  EXPECT_GE(next - first, 2ms) << "the next event reads the clock again";
  std::promise<EventLoop::Clock::time_point> fired;
  auto set_at = on_loop([&] {
    loop_.after(5ms, [&] { fired.set_value(EventLoop::Clock::now()); });
    return loop_.now();
  });
  EXPECT_GE(fired.get_future().get() - set_at, 5ms);
}

// at(): a deadline in the past fires on the next turn, before one that is still ahead.
TEST_F(Timers, AtADeadlineThatHasPassedFiresFirst) {
  std::vector<std::string> fired;
  std::promise<void> done;
  on_loop([&] {
    loop_.at(loop_.now() + 20ms, [&] {
      fired.push_back("ahead");
      done.set_value();
    });
    loop_.at(loop_.now() - 1s, [&] { fired.push_back("passed"); });
    return 0;
  });
  done.get_future().wait();
  EXPECT_EQ(fired, (std::vector<std::string>{"passed", "ahead"}));
}

}  // namespace
}  // namespace plexus
