#include "receipts/receipt_chain.hpp"

#include <nlohmann/json.hpp>

namespace plexus::receipts {

Receipt Chain::issue(const metering::BilledRequest& b, const std::string& body_sha256) {
  const auto& c = b.charge;
  nlohmann::json claims = {{"iss", "plexus"},
                           {"jti", b.request_id},
                           {"iat", b.ended_ms / 1000},
                           {"request_id", b.request_id},
                           {"body_sha256", body_sha256},
                           {"model", b.model},
                           {"node", b.node},
                           {"prompt_tokens", c.prompt_tokens},
                           {"completion_tokens", c.completion_tokens},
                           {"usage_estimated", c.estimated},
                           {"price", {{"input_per_1k", c.price.input_per_1k}, {"output_per_1k", c.price.output_per_1k}}},
                           {"cost", c.cost},
                           {"started_at", b.started_ms},
                           {"ended_at", b.ended_ms},
                           {"status", b.status}};
  // The link and the signature under one lock: the chain's order is the order of issue.
  std::lock_guard lock(mu_);
  claims["prev"] = last_hash_;
  claims["seq"] = ++last_seq_;
  Receipt issued{last_seq_, key_.sign(claims.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)), ""};
  last_hash_ = sha256_base64url(issued.jws);
  return issued;
}

}  // namespace plexus::receipts
