// A transfer's deadlines, as both upstream clients check them: connect, first byte, then idle.
#include "upstream/transfer_deadlines.hpp"

#include <gtest/gtest.h>

namespace plexus {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

HttpRequest with_timeouts() {
  HttpRequest r;
  r.connect_timeout = 100ms;
  r.first_byte_timeout = 300ms;
  r.idle_timeout = 50ms;
  return r;
}

// Not due yet: the watchdog looks again at `next`.
void expect_wait(const DeadlineCheck& c, Clock::time_point next, const char* why = "") {
  EXPECT_EQ(c.error, TransferError::kNone) << why << " (" << c.detail << ")";
  EXPECT_EQ(c.next, next) << why;
}

// Due: the transfer ends with `error`, said as `detail`.
void expect_end(const DeadlineCheck& c, TransferError error, const std::string& detail, const char* why = "") {
  EXPECT_EQ(c.error, error) << why;
  EXPECT_EQ(c.detail, detail) << why;
}

TEST(TransferDeadlines, ConnectThenFirstByteFromTheStart) {
  auto r = with_timeouts();
  Clock::time_point t0{};
  TransferTimes t{t0, t0};
  expect_wait(check_deadlines(r, t, t0 + 10ms), t0 + 100ms, "the connect deadline comes first");
  expect_end(check_deadlines(r, t, t0 + 100ms), TransferError::kConnectTimeout, "no connection within 100 ms");
  t.connected = true;
  expect_wait(check_deadlines(r, t, t0 + 100ms), t0 + 300ms, "connected: only the first byte is due");
  expect_end(check_deadlines(r, t, t0 + 300ms), TransferError::kFirstByteTimeout, "no response within 300 ms");
}

TEST(TransferDeadlines, IdleCountsFromTheLastByteAndNotWhilePaused) {
  auto r = with_timeouts();
  Clock::time_point t0{};
  TransferTimes t{t0, t0 + 400ms, true, true};
  expect_wait(check_deadlines(r, t, t0 + 420ms), t0 + 450ms);
  expect_end(check_deadlines(r, t, t0 + 450ms), TransferError::kIdleTimeout, "no data for 50 ms",
             "long past the first-byte deadline, only idleness counts");
  t.paused = true;
  expect_wait(check_deadlines(r, t, t0 + 900ms), t0 + 950ms, "a paused transfer's silence is the client's");
  EXPECT_EQ(t.last_activity, t0 + 900ms);
}

}  // namespace
}  // namespace plexus
