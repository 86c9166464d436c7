#pragma once
// The ledger's schema, as versioned migrations in SQL both SQLite and PostgreSQL accept. Append
// only: a database remembers the last version it applied (table schema_version) and runs the
// ones after it, each in its own transaction.
#include <cstdint>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

namespace plexus::ledger {

struct Migration {
  int version;
  const char* sql;
};

inline const std::vector<Migration>& migrations() {
  static const std::vector<Migration> all = {
      {1,
       "CREATE TABLE requests ("
       " request_id TEXT NOT NULL, key_id TEXT NOT NULL, group_name TEXT NOT NULL, model TEXT NOT NULL,"
       " node TEXT NOT NULL, prompt_tokens BIGINT NOT NULL, completion_tokens BIGINT NOT NULL,"
       " estimated INTEGER NOT NULL, price_input_per_1k DOUBLE PRECISION NOT NULL,"
       " price_output_per_1k DOUBLE PRECISION NOT NULL, cost DOUBLE PRECISION NOT NULL, status INTEGER NOT NULL,"
       " error_code TEXT NOT NULL, started_ms BIGINT NOT NULL, ended_ms BIGINT NOT NULL, day TEXT NOT NULL);"
       "CREATE INDEX requests_key_day ON requests (key_id, day);"
       "CREATE INDEX requests_node_day ON requests (node, day);"},
      {2,
       "CREATE TABLE receipts (seq BIGINT NOT NULL, request_id TEXT NOT NULL, jws TEXT NOT NULL);"
       "CREATE INDEX receipts_request ON receipts (request_id);"
       "CREATE INDEX receipts_seq ON receipts (seq);"},
      {3,
       "CREATE TABLE api_keys (id TEXT NOT NULL, key_sha256 TEXT NOT NULL, group_name TEXT NOT NULL, admin INTEGER NOT NULL,"
       " rpm BIGINT NOT NULL, tpm BIGINT NOT NULL, budget DOUBLE PRECISION, created_ms BIGINT NOT NULL, revoked_ms BIGINT);"
       "CREATE INDEX api_keys_id ON api_keys (id);"},
      {4,  // several routers on one ledger: each keeps its own chain of receipts
       "ALTER TABLE receipts ADD COLUMN chain TEXT NOT NULL DEFAULT '';"
       "CREATE INDEX receipts_chain_seq ON receipts (chain, seq);"},
  };
  return all;
}

// Brings a database to the newest version, each migration in its own transaction, through the
// engine's `exec` (one SQL text, which may hold several statements). `begin` starts a transaction
// that holds the write lock from its first statement (SQLite's BEGIN IMMEDIATE), and the version is
// read again inside it: a second process migrating the same new file at once waits at `begin`
// (its busy timeout), then finds the migration applied and skips it. A deferred BEGIN that reads
// first and writes second fails at once with "database is locked" when another writer committed
// in between: SQLite cannot wait there.
inline void run_migrations(const std::string& begin, const std::function<int()>& version,
                           const std::function<void(const std::string&)>& exec) {
  for (const auto& m : migrations()) {
    exec(begin);
    try {
      if (version() < m.version) {
        exec(m.sql);
        exec("DELETE FROM schema_version; INSERT INTO schema_version VALUES (" + std::to_string(m.version) + ")");
      }
      exec("COMMIT");
    } catch (...) {
      exec("ROLLBACK");
      throw;
    }
  }
}

// The UTC day ("YYYY-MM-DD") of a Unix time in ms: the ledger's grouping key.
inline std::string utc_day(std::int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char out[16];
  std::strftime(out, sizeof out, "%Y-%m-%d", &tm);
  return out;
}

}  // namespace plexus::ledger
