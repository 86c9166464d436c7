#include "ledger/sqlite_store.hpp"

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <chrono>
#include <stdexcept>
#include <thread>

#include "auth/sha256.hpp"
#include "ledger/migrations.hpp"

namespace plexus::ledger {
namespace {

using nlohmann::json;

// How long an open or a write waits for another process's lock on the same file.
constexpr std::chrono::milliseconds kBusyTimeout(5000);

class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK) throw std::runtime_error(sqlite3_errmsg(db));
  }
  ~Statement() { sqlite3_finalize(s_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Statement& bind(int i, double v) {
    sqlite3_bind_double(s_, i, v);
    return *this;
  }
  bool step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw std::runtime_error(sqlite3_errmsg(db_));
  }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  std::string text(int col) const {
    auto* p = sqlite3_column_text(s_, col);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  std::int64_t integer(int col) const { return sqlite3_column_int64(s_, col); }
  double number(int col) const { return sqlite3_column_double(s_, col); }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

// The first row of `seq, jws`, or none.
receipts::Receipt one_receipt(Statement& s) {
  if (!s.step()) return {};
  return {s.integer(0), s.text(1), s.text(2)};
}

class SqliteStore final : public Store {
 public:
  SqliteStore(const std::string& path, std::string chain) : path_(path), chain_(std::move(chain)) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
      std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw std::runtime_error(path + ": cannot open the ledger: " + why);
    }
    // The busy timeout first: switching to WAL takes a lock, and another process on the same file
    // (a router, a --check-config) may hold one for a moment; without it the open failed at once
    // with "database is locked".
    exec("PRAGMA busy_timeout=" + std::to_string(kBusyTimeout.count()));
    enter_wal_mode();
    exec("PRAGMA synchronous=NORMAL");
  }
  ~SqliteStore() override { sqlite3_close(db_); }

  void migrate() override {
    exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
    run_migrations("BEGIN IMMEDIATE", [this] { return schema_version(); }, [this](const std::string& sql) { exec(sql); });
  }

  int schema_version() override {
    Statement s(db_, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
    return s.step() ? static_cast<int>(s.integer(0)) : 0;
  }

  void insert(const std::vector<Entry>& batch) override {
    if (batch.empty()) return;
    exec("BEGIN");
    try {
      Statement s(db_,
                  "INSERT INTO requests (request_id, key_id, group_name, model, node, prompt_tokens, completion_tokens,"
                  " estimated, price_input_per_1k, price_output_per_1k, cost, status, error_code, started_ms, ended_ms, day)"
                  " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
      Statement r(db_, "INSERT INTO receipts (seq, request_id, jws, chain) VALUES (?, ?, ?, ?)");
      for (const auto& e : batch) {
        const auto& b = e.billed;
        if (e.receipt.seq) {
          r.bind(1, e.receipt.seq).bind(2, b.request_id).bind(3, e.receipt.jws).bind(4, chain_);
          r.step();
          r.reset();
        }
        s.bind(1, b.request_id).bind(2, b.key_id).bind(3, b.group).bind(4, b.model).bind(5, b.node);
        s.bind(6, b.charge.prompt_tokens).bind(7, b.charge.completion_tokens).bind(8, static_cast<std::int64_t>(b.charge.estimated));
        s.bind(9, b.charge.price.input_per_1k).bind(10, b.charge.price.output_per_1k).bind(11, b.charge.cost);
        s.bind(12, static_cast<std::int64_t>(b.status)).bind(13, b.error_code).bind(14, b.started_ms).bind(15, b.ended_ms);
        s.bind(16, utc_day(b.ended_ms));
        s.step();
        s.reset();
      }
      exec("COMMIT");
    } catch (...) {
      exec("ROLLBACK");
      throw;
    }
  }

  json usage(const std::string& key_id, const Period& period) override {
    Statement s(db_,
                "SELECT day, key_id, model, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost),"
                " SUM(estimated) FROM requests WHERE (?1 = '' OR key_id = ?1) AND day >= ?2 AND day <= ?3"
                " GROUP BY day, key_id, model ORDER BY day, key_id, model");
    s.bind(1, key_id).bind(2, period.from).bind(3, period.to);
    json rows = json::array();
    while (s.step())
      rows.push_back({{"day", s.text(0)},
                      {"key", s.text(1)},
                      {"model", s.text(2)},
                      {"requests", s.integer(3)},
                      {"prompt_tokens", s.integer(4)},
                      {"completion_tokens", s.integer(5)},
                      {"cost", s.number(6)},
                      {"estimated_requests", s.integer(7)}});
    return rows;
  }

  json node_days(const std::string& node, const Period& period) override {
    Statement s(db_,
                "SELECT day, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost) FROM requests"
                " WHERE node = ?1 AND day >= ?2 AND day <= ?3 GROUP BY day ORDER BY day");
    s.bind(1, node).bind(2, period.from).bind(3, period.to);
    json rows = json::array();
    while (s.step())
      rows.push_back({{"day", s.text(0)},
                      {"requests", s.integer(1)},
                      {"prompt_tokens", s.integer(2)},
                      {"completion_tokens", s.integer(3)},
                      {"gross", s.number(4)}});
    return rows;
  }

  receipts::Receipt receipt(const std::string& request_id) override {
    Statement s(db_, "SELECT seq, jws, chain FROM receipts WHERE request_id = ? ORDER BY seq DESC LIMIT 1");
    s.bind(1, request_id);
    return one_receipt(s);
  }

  receipts::Receipt receipt_at(const std::string& chain, std::int64_t seq) override {
    Statement s(db_, "SELECT seq, jws, chain FROM receipts WHERE chain = ? AND seq = ? LIMIT 1");
    s.bind(1, chain).bind(2, seq);
    return one_receipt(s);
  }

  receipts::Receipt last_receipt() override {
    Statement s(db_, "SELECT seq, jws, chain FROM receipts WHERE chain = ? ORDER BY seq DESC LIMIT 1");
    s.bind(1, chain_);
    return one_receipt(s);
  }

  void add_key(const KeyConfig& k) override {
    Statement s(db_, "INSERT INTO api_keys (id, key_sha256, group_name, admin, rpm, tpm, budget, created_ms) VALUES (?,?,?,?,?,?,?,?)");
    s.bind(1, k.id).bind(2, to_hex(k.key_hash)).bind(3, k.group).bind(4, static_cast<std::int64_t>(k.admin));
    s.bind(5, k.rpm).bind(6, k.tpm).bind(8, k.created_ms);
    if (k.budget) s.bind(7, *k.budget);
    s.step();
  }

  void revoke_key(const std::string& id, std::int64_t when_ms) override {
    Statement s(db_, "UPDATE api_keys SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL");
    s.bind(1, when_ms).bind(2, id);
    s.step();
  }

  std::vector<KeyConfig> api_keys() override {
    Statement s(db_, "SELECT id, key_sha256, group_name, admin, rpm, tpm, budget, created_ms, budget IS NULL FROM api_keys"
                     " WHERE revoked_ms IS NULL ORDER BY created_ms");
    std::vector<KeyConfig> out;
    while (s.step()) {
      KeyConfig k;
      k.id = s.text(0);
      if (auto hash = parse_sha256_hex(s.text(1))) k.key_hash = *hash;
      k.group = s.text(2);
      k.admin = s.integer(3) != 0;
      k.rpm = s.integer(4);
      k.tpm = s.integer(5);
      if (s.integer(8) == 0) k.budget = s.number(6);
      k.created_ms = s.integer(7);
      k.from_api = true;
      out.push_back(std::move(k));
    }
    return out;
  }

  std::map<std::string, double> spent_by_key() override {
    Statement s(db_, "SELECT key_id, SUM(cost) FROM requests GROUP BY key_id");
    std::map<std::string, double> out;
    while (s.step()) out[s.text(0)] = s.number(1);
    return out;
  }

 private:
  // The switch to WAL upgrades the pragma's read lock to a write lock, and SQLite never calls the
  // busy handler for an upgrade (two upgraders would deadlock): a process opening a new ledger
  // file while another one does got SQLITE_BUSY at once. The switch is idempotent, so it is tried
  // again, for as long as the busy timeout would have waited.
  void enter_wal_mode() {
    constexpr auto kPause = std::chrono::milliseconds(10);
    for (auto waited = std::chrono::milliseconds(0);; waited += kPause) {
      int rc = sqlite3_exec(db_, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
      if (rc == SQLITE_OK) return;
      if (rc != SQLITE_BUSY || waited >= kBusyTimeout)
        throw std::runtime_error(path_ + ": cannot switch the ledger to WAL mode: " + sqlite3_errmsg(db_));
      std::this_thread::sleep_for(kPause);
    }
  }

  void exec(const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      std::string why = error ? error : "unknown error";
      sqlite3_free(error);
      throw std::runtime_error(path_ + ": " + why);
    }
  }

  std::string path_;
  std::string chain_;  // this router's receipt chain
  sqlite3* db_ = nullptr;
};

}  // namespace

std::unique_ptr<Store> open_sqlite(const std::string& path, const std::string& chain) {
  auto store = std::make_unique<SqliteStore>(path, chain);
  store->migrate();
  return store;
}

}  // namespace plexus::ledger
