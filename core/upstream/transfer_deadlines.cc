#include "upstream/transfer_deadlines.hpp"

#include <algorithm>

namespace plexus {
namespace {

std::string ms(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

}  // namespace

DeadlineCheck check_deadlines(const HttpRequest& r, TransferTimes& t, std::chrono::steady_clock::time_point now) {
  if (!t.got_status) {
    auto connect_due = t.started + r.connect_timeout;
    auto first_byte_due = t.started + r.first_byte_timeout;
    if (!t.connected && now >= connect_due)
      return {TransferError::kConnectTimeout, "no connection within " + ms(r.connect_timeout), {}};
    if (now >= first_byte_due) return {TransferError::kFirstByteTimeout, "no response within " + ms(r.first_byte_timeout), {}};
    return {TransferError::kNone, {}, t.connected ? first_byte_due : std::min(connect_due, first_byte_due)};
  }
  if (t.paused) {
    t.last_activity = now;
    return {TransferError::kNone, {}, now + r.idle_timeout};
  }
  auto idle_due = t.last_activity + r.idle_timeout;
  if (now >= idle_due) return {TransferError::kIdleTimeout, "no data for " + ms(r.idle_timeout), {}};
  return {TransferError::kNone, {}, idle_due};
}

}  // namespace plexus
