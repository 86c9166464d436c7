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

TEST(TransferDeadlines, ConnectThenFirstByteFromTheStart) {
  auto r = with_timeouts();
  Clock::time_point t0{};
  TransferTimes t{t0, t0};
  auto early = check_deadlines(r, t, t0 + 10ms);
  EXPECT_EQ(early.error, TransferError::kNone);
  EXPECT_EQ(early.next, t0 + 100ms) << "the connect deadline comes first";
  auto late = check_deadlines(r, t, t0 + 100ms);
  EXPECT_EQ(late.error, TransferError::kConnectTimeout);
  EXPECT_EQ(late.detail, "no connection within 100 ms");
  t.connected = true;
  auto waiting = check_deadlines(r, t, t0 + 100ms);
  EXPECT_EQ(waiting.error, TransferError::kNone);
  EXPECT_EQ(waiting.next, t0 + 300ms) << "connected: only the first byte is due";
  auto silent = check_deadlines(r, t, t0 + 300ms);
  EXPECT_EQ(silent.error, TransferError::kFirstByteTimeout);
  EXPECT_EQ(silent.detail, "no response within 300 ms");
}

TEST(TransferDeadlines, IdleCountsFromTheLastByteAndNotWhilePaused) {
  auto r = with_timeouts();
  Clock::time_point t0{};
  TransferTimes t{t0, t0 + 400ms, true, true};
  auto flowing = check_deadlines(r, t, t0 + 420ms);
  EXPECT_EQ(flowing.error, TransferError::kNone);
  EXPECT_EQ(flowing.next, t0 + 450ms);
  EXPECT_EQ(check_deadlines(r, t, t0 + 450ms).error, TransferError::kIdleTimeout) << "long past the first-byte deadline, only idleness counts";
  t.paused = true;
  auto paused = check_deadlines(r, t, t0 + 900ms);
  EXPECT_EQ(paused.error, TransferError::kNone) << "a paused transfer's silence is the client's";
  EXPECT_EQ(t.last_activity, t0 + 900ms);
  EXPECT_EQ(paused.next, t0 + 950ms);
}

}  // namespace
}  // namespace plexus
