#pragma once
// The deadlines of one upstream transfer, the same for both clients: connected within
// connect_timeout, a status line within first_byte_timeout (both from the start), then never
// idle_timeout without a byte. A stream that keeps sending is never cut, and a paused transfer's
// silence is the client's, not the backend's.
#include <chrono>
#include <string>

#include "plexus/http_client.hpp"

namespace plexus {

struct DeadlineCheck {
  TransferError error = TransferError::kNone;  // kNone: not due; look again at `next`
  std::string detail;
  std::chrono::steady_clock::time_point next;
};

struct TransferTimes {
  std::chrono::steady_clock::time_point started;
  std::chrono::steady_clock::time_point last_activity;  // the last byte read (or the start)
  bool connected = false;  // a client whose library enforces connect_timeout itself says true
  bool got_status = false;
  bool paused = false;
};

// What a transfer's watchdog does when it fires at `now`. A paused transfer's silence restarts
// its idle clock (last_activity becomes now).
DeadlineCheck check_deadlines(const HttpRequest& request, TransferTimes& times, std::chrono::steady_clock::time_point now);

}  // namespace plexus
