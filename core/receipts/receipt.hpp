#pragma once
// A signed receipt as the ledger keeps it: the JWS, and its place in the router's chain.
#include <cstdint>
#include <string>

namespace plexus::receipts {

struct Receipt {
  std::int64_t seq = 0;  // 1, 2, ... in the order of issue; 0: none
  std::string jws;       // compact JWS; "" for none
  std::string chain;     // whose chain: the router's cluster.id ("" for a router alone)
};

}  // namespace plexus::receipts
