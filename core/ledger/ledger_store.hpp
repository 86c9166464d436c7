#pragma once
// Where the ledger's rows live. One implementation per engine (SQLite now; PostgreSQL plugs in
// behind the same interface), each applying the same versioned migrations (migrations.hpp).
// Used from the ledger's own thread only.
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace plexus::ledger {

// One request, as it is billed.
struct Entry {
  std::string request_id;
  std::string key_id;
  std::string group;
  std::string model;
  std::string node;  // "-" when no node served it
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  bool estimated = false;
  double price_input_per_1k = 0;
  double price_output_per_1k = 0;
  double cost = 0;
  int status = 0;
  std::string error_code;
  std::int64_t started_ms = 0;  // Unix time
  std::int64_t ended_ms = 0;
  std::string receipt;  // its signed receipt (JWS), "" when none was issued
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
  virtual std::string receipt(const std::string& request_id) = 0;  // "" when unknown
  virtual std::string last_receipt() = 0;                            // the chain's newest, "" for none
};

}  // namespace plexus::ledger
