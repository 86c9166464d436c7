#pragma once
// One receipt per request: its claims signed as a JWS (jws.hpp), each naming the hash of the
// receipt before it, so the router's receipts form one chain that shows a removed or reordered
// receipt. Every loop issues receipts; the chain's link is taken under a mutex.
#include <cstdint>
#include <mutex>
#include <string>

#include "metering/billed_request.hpp"
#include "receipts/jws.hpp"

namespace plexus::receipts {

class Chain {
 public:
  // `last_hash`: the hash of the last receipt issued before (from the ledger), "" for none.
  Chain(SigningKey key, std::string last_hash) : key_(std::move(key)), last_hash_(std::move(last_hash)) {}
  // Any thread. `body_sha256`: of the request body as the client sent it (base64url).
  std::string issue(const metering::BilledRequest& billed, const std::string& body_sha256);
  const SigningKey& key() const { return key_; }

 private:
  SigningKey key_;
  std::mutex mu_;
  std::string last_hash_;
};

}  // namespace plexus::receipts
