#pragma once
// A request as it was billed: what the ledger records and what its receipt claims, built once
// when the request ends.
#include <cstdint>
#include <string>

#include "metering/request_meter.hpp"

namespace plexus::metering {

struct BilledRequest {
  std::string request_id;
  std::string key_id;
  std::string group;
  std::string model;
  std::string node;  // "-" when no node served it
  Charge charge;
  int status = 0;
  std::string error_code;
  std::int64_t started_ms = 0;  // Unix time
  std::int64_t ended_ms = 0;
};

}  // namespace plexus::metering
