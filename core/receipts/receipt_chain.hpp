#pragma once
// One receipt per request: its claims signed as a JWS (jws.hpp), each naming the hash of the
// receipt before it and its own place in the chain (seq), so the router's receipts form one chain
// that shows a removed or reordered receipt. Every loop issues receipts; the chain's link is
// taken under a mutex.
#include <cstdint>
#include <mutex>
#include <string>

#include "metering/billed_request.hpp"
#include "receipts/jws.hpp"
#include "receipts/receipt.hpp"

namespace plexus::receipts {

class Chain {
 public:
  // `last`: the last receipt issued before (from the ledger); none for a new chain.
  Chain(SigningKey key, const Receipt& last)
      : key_(std::move(key)), last_hash_(last.jws.empty() ? "" : sha256_base64url(last.jws)), last_seq_(last.seq) {}
  // Any thread. `body_sha256`: of the request body as the client sent it (base64url).
  Receipt issue(const metering::BilledRequest& billed, const std::string& body_sha256);
  const SigningKey& key() const { return key_; }

 private:
  SigningKey key_;
  std::mutex mu_;
  std::string last_hash_;
  std::int64_t last_seq_;
};

}  // namespace plexus::receipts
