#pragma once
// The ledger: every request's charge, written off the event loops. Loops append (a mutex held
// for a push); one thread owns the database, commits what gathered every flush interval in one
// transaction, and answers queries, posting each answer to the loop that asked. A clean stop
// writes everything; a crash loses at most one flush interval.
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ledger/ledger_store.hpp"

namespace plexus {
class EventLoop;
}

namespace plexus::ledger {

class Ledger {
 public:
  Ledger(std::unique_ptr<Store> store, std::chrono::milliseconds flush_interval);
  ~Ledger();  // stop()

  // Any thread.
  void append(Entry entry);
  // Runs `query` on the ledger's thread (after what is queued is written, so a client sees its
  // own requests) and `done` with its answer on `loop`. A query that throws answers null.
  void query(std::function<nlohmann::json(Store&)> query, EventLoop& loop, std::function<void(nlohmann::json)> done);
  // The same for what anyone may ask (no key: the public receipt pages): refused (false, `done`
  // never runs) while kMaxQueuedQueries wait, so a flood cannot queue without bound.
  bool try_query(std::function<nlohmann::json(Store&)> query, EventLoop& loop, std::function<void(nlohmann::json)> done);
  static constexpr std::size_t kMaxQueuedQueries = 256;
  // Writes what is queued and ends the thread; later appends are dropped (logged).
  void stop();
  // Rows appended and not yet committed: how far the ledger is behind (/metrics).
  std::size_t queued() const {
    std::lock_guard lock(mu_);
    return pending_.size();
  }

  // Before the thread starts work: the sums the budgets start from (constructor's thread).
  std::map<std::string, double> spent_by_key() const { return spent_at_start_; }
  const receipts::Receipt& last_receipt() const { return last_receipt_at_start_; }
  const std::vector<KeyConfig>& api_keys() const { return api_keys_at_start_; }

 private:
  struct Query {
    std::function<nlohmann::json(Store&)> run;
    EventLoop* loop;
    std::function<void(nlohmann::json)> done;
  };
  void run();
  void write(std::vector<Entry>& batch);

  std::unique_ptr<Store> store_;
  std::chrono::milliseconds flush_interval_;
  std::map<std::string, double> spent_at_start_;
  receipts::Receipt last_receipt_at_start_;
  std::vector<KeyConfig> api_keys_at_start_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::vector<Entry> pending_;
  std::vector<Query> queries_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace plexus::ledger
