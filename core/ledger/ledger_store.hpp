#pragma once
// Where the ledger's rows live. One implementation per engine (SQLite now; PostgreSQL plugs in
// behind the same interface), each applying the same versioned migrations (migrations.hpp).
// Used from the ledger's own thread only.
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "metering/billed_request.hpp"
#include "receipts/receipt.hpp"

namespace plexus::ledger {

// One request, as it is billed, with its receipt.
struct Entry {
  metering::BilledRequest billed;
  receipts::Receipt receipt;  // its signed receipt; none when none was issued
};

// Inclusive day range, "YYYY-MM-DD" (UTC).
struct Period {
  std::string from;
  std::string to;
};

class Store {
 public:
  virtual ~Store() = default;
  virtual void migrate() = 0;  // applies what the database has not seen yet
  virtual int schema_version() = 0;
  virtual void insert(const std::vector<Entry>& batch) = 0;  // one transaction
  // Usage by day and model (and key when `key_id` is empty: every key).
  virtual nlohmann::json usage(const std::string& key_id, const Period& period) = 0;
  // One node's requests, tokens and gross earnings by day.
  virtual nlohmann::json node_days(const std::string& node, const Period& period) = 0;
  virtual std::map<std::string, double> spent_by_key() = 0;
  // Receipts, by request or by place in the chain; none (seq 0) when unknown.
  virtual receipts::Receipt receipt(const std::string& request_id) = 0;
  virtual receipts::Receipt receipt_at(const std::string& chain, std::int64_t seq) = 0;
  virtual receipts::Receipt last_receipt() = 0;  // this router's chain's newest
  // Keys created through the admin API (only their hashes); revoked ones are not returned.
  virtual void add_key(const KeyConfig& key) = 0;
  virtual void revoke_key(const std::string& id, std::int64_t when_ms) = 0;
  virtual std::vector<KeyConfig> api_keys() = 0;
};

}  // namespace plexus::ledger
