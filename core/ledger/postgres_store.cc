#include "ledger/postgres_store.hpp"

#include <libpq-fe.h>
#include <nlohmann/json.hpp>

#include <stdexcept>

#include "auth/sha256.hpp"
#include "ledger/migrations.hpp"

namespace plexus::ledger {
namespace {

using nlohmann::json;

// One result, freed when it goes; text parameters, text results (what the SQL says is the type).
class Result {
 public:
  explicit Result(PGresult* r) : r_(r) {}
  ~Result() { PQclear(r_); }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  int rows() const { return PQntuples(r_); }
  std::string text(int row, int col) const { return PQgetvalue(r_, row, col); }
  bool null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  std::int64_t integer(int row, int col) const { return std::stoll(text(row, col)); }
  double number(int row, int col) const { return std::stod(text(row, col)); }

 private:
  PGresult* r_;
};

// The first row of `seq, jws`, or none.
receipts::Receipt one_receipt(PGresult* raw) {
  Result r(raw);
  if (!r.rows()) return {};
  return {r.integer(0, 0), r.text(0, 1), r.text(0, 2)};
}

constexpr std::int64_t kMigrationLock = 0x706c65787573;  // "plexus"

class PostgresStore final : public Store {
 public:
  PostgresStore(const std::string& url, std::string chain) : db_(PQconnectdb(url.c_str())), chain_(std::move(chain)) {
    if (PQstatus(db_) != CONNECTION_OK) {
      std::string why = PQerrorMessage(db_);
      PQfinish(db_);
      throw std::runtime_error("cannot connect to the ledger's PostgreSQL: " + why);
    }
  }
  ~PostgresStore() override { PQfinish(db_); }

  // Several routers may start at once on one database: an advisory lock lets one migrate at a
  // time (the others then find the schema up to date). Without it two CREATE TABLEs race.
  void migrate() override {
    exec("SELECT pg_advisory_lock(" + std::to_string(kMigrationLock) + ")");
    try {
      exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
      run_migrations("BEGIN", [this] { return schema_version(); }, [this](const std::string& sql) { exec(sql); });
    } catch (...) {
      exec("SELECT pg_advisory_unlock(" + std::to_string(kMigrationLock) + ")");
      throw;
    }
    exec("SELECT pg_advisory_unlock(" + std::to_string(kMigrationLock) + ")");
  }

  int schema_version() override {
    Result r(query("SELECT COALESCE(MAX(version), 0) FROM schema_version", {}));
    return static_cast<int>(r.integer(0, 0));
  }

  void insert(const std::vector<Entry>& batch) override {
    if (batch.empty()) return;
    exec("BEGIN");
    try {
      for (const auto& e : batch) {
        const auto& b = e.billed;
        const auto& c = b.charge;
        if (e.receipt.seq)
          Result(query("INSERT INTO receipts (seq, request_id, jws, chain) VALUES ($1, $2, $3, $4)",
                       {std::to_string(e.receipt.seq), b.request_id, e.receipt.jws, chain_}));
        Result(query("INSERT INTO requests (request_id, key_id, group_name, model, node, prompt_tokens, completion_tokens,"
                     " estimated, price_input_per_1k, price_output_per_1k, cost, status, error_code, started_ms, ended_ms, day)"
                     " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)",
                     {b.request_id, b.key_id, b.group, b.model, b.node, std::to_string(c.prompt_tokens),
                      std::to_string(c.completion_tokens), c.estimated ? "1" : "0", number_text(c.price.input_per_1k),
                      number_text(c.price.output_per_1k), number_text(c.cost), std::to_string(b.status), b.error_code,
                      std::to_string(b.started_ms), std::to_string(b.ended_ms), utc_day(b.ended_ms)}));
      }
      exec("COMMIT");
    } catch (...) {
      exec("ROLLBACK");
      throw;
    }
  }

  json usage(const std::string& key_id, const Period& period) override {
    Result r(query("SELECT day, key_id, model, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost), SUM(estimated)"
                   " FROM requests WHERE ($1 = '' OR key_id = $1) AND day >= $2 AND day <= $3"
                   " GROUP BY day, key_id, model ORDER BY day, key_id, model",
                   {key_id, period.from, period.to}));
    json rows = json::array();
    for (int i = 0; i < r.rows(); ++i)
      rows.push_back({{"day", r.text(i, 0)}, {"key", r.text(i, 1)}, {"model", r.text(i, 2)}, {"requests", r.integer(i, 3)},
                      {"prompt_tokens", r.integer(i, 4)}, {"completion_tokens", r.integer(i, 5)}, {"cost", r.number(i, 6)},
                      {"estimated_requests", r.integer(i, 7)}});
    return rows;
  }

  json node_days(const std::string& node, const Period& period) override {
    Result r(query("SELECT day, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost) FROM requests"
                   " WHERE node = $1 AND day >= $2 AND day <= $3 GROUP BY day ORDER BY day",
                   {node, period.from, period.to}));
    json rows = json::array();
    for (int i = 0; i < r.rows(); ++i)
      rows.push_back({{"day", r.text(i, 0)}, {"requests", r.integer(i, 1)}, {"prompt_tokens", r.integer(i, 2)},
                      {"completion_tokens", r.integer(i, 3)}, {"gross", r.number(i, 4)}});
    return rows;
  }

  std::map<std::string, double> spent_by_key() override {
    Result r(query("SELECT key_id, SUM(cost) FROM requests GROUP BY key_id", {}));
    std::map<std::string, double> out;
    for (int i = 0; i < r.rows(); ++i) out[r.text(i, 0)] = r.number(i, 1);
    return out;
  }

  receipts::Receipt receipt(const std::string& request_id) override {
    return one_receipt(query("SELECT seq, jws, chain FROM receipts WHERE request_id = $1 ORDER BY seq DESC LIMIT 1", {request_id}));
  }

  receipts::Receipt receipt_at(const std::string& chain, std::int64_t seq) override {
    return one_receipt(query("SELECT seq, jws, chain FROM receipts WHERE chain = $1 AND seq = $2 LIMIT 1", {chain, std::to_string(seq)}));
  }

  receipts::Receipt last_receipt() override {
    return one_receipt(query("SELECT seq, jws, chain FROM receipts WHERE chain = $1 ORDER BY seq DESC LIMIT 1", {chain_}));
  }

  void add_key(const KeyConfig& k) override {
    Result(query("INSERT INTO api_keys (id, key_sha256, group_name, admin, rpm, tpm, budget, created_ms)"
                 " VALUES ($1,$2,$3,$4,$5,$6,NULLIF($7, '')::DOUBLE PRECISION,$8)",
                 {k.id, to_hex(k.key_hash), k.group, k.admin ? "1" : "0", std::to_string(k.rpm), std::to_string(k.tpm),
                  k.budget ? number_text(*k.budget) : "", std::to_string(k.created_ms)}));
  }

  void revoke_key(const std::string& id, std::int64_t when_ms) override {
    Result(query("UPDATE api_keys SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL", {std::to_string(when_ms), id}));
  }

  std::vector<KeyConfig> api_keys() override {
    Result r(query("SELECT id, key_sha256, group_name, admin, rpm, tpm, budget, created_ms FROM api_keys"
                   " WHERE revoked_ms IS NULL ORDER BY created_ms", {}));
    std::vector<KeyConfig> out;
    for (int i = 0; i < r.rows(); ++i) {
      KeyConfig k;
      k.id = r.text(i, 0);
      if (auto hash = parse_sha256_hex(r.text(i, 1))) k.key_hash = *hash;
      k.group = r.text(i, 2);
      k.admin = r.integer(i, 3) != 0;
      k.rpm = r.integer(i, 4);
      k.tpm = r.integer(i, 5);
      if (!r.null(i, 6)) k.budget = r.number(i, 6);
      k.created_ms = r.integer(i, 7);
      k.from_api = true;
      out.push_back(std::move(k));
    }
    return out;
  }

 private:
  static std::string number_text(double v) {
    char out[64];
    std::snprintf(out, sizeof out, "%.17g", v);  // round-trips exactly
    return out;
  }

  PGresult* query(const std::string& sql, const std::vector<std::string>& params) {
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    PGresult* r = PQexecParams(db_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0);
    auto status = PQresultStatus(r);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      std::string why = PQresultErrorMessage(r);
      PQclear(r);
      throw std::runtime_error("ledger (PostgreSQL): " + why);
    }
    return r;
  }

  void exec(const std::string& sql) {
    PGresult* r = PQexec(db_, sql.c_str());
    auto status = PQresultStatus(r);
    std::string why = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK ? "" : PQresultErrorMessage(r);
    PQclear(r);
    if (!why.empty()) throw std::runtime_error("ledger (PostgreSQL): " + why);
  }

  PGconn* db_;
  std::string chain_;  // this router's receipt chain
};

}  // namespace

std::unique_ptr<Store> open_postgres(const std::string& url, const std::string& chain) {
  auto store = std::make_unique<PostgresStore>(url, chain);
  store->migrate();
  return store;
}

}  // namespace plexus::ledger
