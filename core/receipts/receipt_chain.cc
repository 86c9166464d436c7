#include "receipts/receipt_chain.hpp"

#include <nlohmann/json.hpp>

namespace plexus::receipts {

std::string Chain::issue(const Claims& c) {
  nlohmann::json claims = {{"iss", "plexus"},
                           {"jti", c.request_id},
                           {"iat", c.ended_ms / 1000},
                           {"request_id", c.request_id},
                           {"body_sha256", c.body_sha256},
                           {"model", c.model},
                           {"node", c.node},
                           {"prompt_tokens", c.prompt_tokens},
                           {"completion_tokens", c.completion_tokens},
                           {"usage_estimated", c.usage_estimated},
                           {"price", {{"input_per_1k", c.price_input_per_1k}, {"output_per_1k", c.price_output_per_1k}}},
                           {"cost", c.cost},
                           {"started_at", c.started_ms},
                           {"ended_at", c.ended_ms},
                           {"status", c.status}};
  // The link and the signature under one lock: the chain's order is the order of issue.
  std::lock_guard lock(mu_);
  claims["prev"] = last_hash_;
  std::string jws = key_.sign(claims.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  last_hash_ = sha256_base64url(jws);
  return jws;
}

}  // namespace plexus::receipts
