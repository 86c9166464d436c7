#pragma once
// One receipt per request: its claims signed as a JWS (jws.hpp), each naming the hash of the
// receipt before it, so the router's receipts form one chain that shows a removed or reordered
// receipt. Every loop issues receipts; the chain's link is taken under a mutex.
#include <cstdint>
#include <mutex>
#include <string>

#include "receipts/jws.hpp"

namespace plexus::receipts {

struct Claims {
  std::string request_id;
  std::string body_sha256;  // of the request body as the client sent it, base64url
  std::string model;
  std::string node;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  bool usage_estimated = false;
  double price_input_per_1k = 0;
  double price_output_per_1k = 0;
  double cost = 0;
  std::int64_t started_ms = 0;
  std::int64_t ended_ms = 0;
  int status = 0;
};

class Chain {
 public:
  // `last_hash`: the hash of the last receipt issued before (from the ledger), "" for none.
  Chain(SigningKey key, std::string last_hash) : key_(std::move(key)), last_hash_(std::move(last_hash)) {}
  std::string issue(const Claims& claims);  // any thread
  const SigningKey& key() const { return key_; }

 private:
  SigningKey key_;
  std::mutex mu_;
  std::string last_hash_;
};

}  // namespace plexus::receipts
