#include "ledger/ledger.hpp"

#include <spdlog/spdlog.h>

#include "loop/event_loop.hpp"

namespace plexus::ledger {

Ledger::Ledger(std::unique_ptr<Store> store, std::chrono::milliseconds flush_interval)
    : store_(std::move(store)),
      flush_interval_(flush_interval),
      spent_at_start_(store_->spent_by_key()),
      last_receipt_at_start_(store_->last_receipt()),
      api_keys_at_start_(store_->api_keys()) {
  thread_ = std::thread([this] { run(); });
}

Ledger::~Ledger() { stop(); }

void Ledger::append(Entry entry) {
  std::lock_guard lock(mu_);
  if (stopping_) {
    spdlog::error("ledger: request {} ended after the ledger stopped; not recorded", entry.billed.request_id);
    return;
  }
  pending_.push_back(std::move(entry));
}

void Ledger::query(std::function<nlohmann::json(Store&)> query, EventLoop& loop, std::function<void(nlohmann::json)> done) {
  {
    std::lock_guard lock(mu_);
    queries_.push_back(Query{std::move(query), &loop, std::move(done)});
  }
  wake_.notify_one();
}

bool Ledger::try_query(std::function<nlohmann::json(Store&)> query, EventLoop& loop, std::function<void(nlohmann::json)> done) {
  {
    std::lock_guard lock(mu_);
    if (queries_.size() >= kMaxQueuedQueries) return false;
    queries_.push_back(Query{std::move(query), &loop, std::move(done)});
  }
  wake_.notify_one();
  return true;
}

void Ledger::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Ledger::write(std::vector<Entry>& batch) {
  if (batch.empty()) return;
  try {
    store_->insert(batch);
  } catch (const std::exception& e) {
    // Kept for the next flush: a full disk or a locked file is retried, not lost.
    spdlog::error("ledger: could not write {} entries (retrying): {}", batch.size(), e.what());
    std::lock_guard lock(mu_);
    pending_.insert(pending_.begin(), batch.begin(), batch.end());
  }
  batch.clear();
}

void Ledger::run() {
  std::vector<Entry> batch;
  std::vector<Query> queries;
  int final_tries = 0;  // at stop, a ledger that cannot be written is given up after a few tries
  for (;;) {
    bool last;
    {
      std::unique_lock lock(mu_);
      wake_.wait_for(lock, flush_interval_, [this] { return stopping_ || !queries_.empty(); });
      batch.swap(pending_);
      queries.swap(queries_);
      last = stopping_;
    }
    write(batch);
    for (auto& q : queries) {
      nlohmann::json answer;
      try {
        answer = q.run(*store_);
      } catch (const std::exception& e) {
        spdlog::error("ledger: a query failed: {}", e.what());
      }
      q.loop->post([done = std::move(q.done), answer = std::move(answer)]() mutable { done(std::move(answer)); });
    }
    queries.clear();
    if (last) {
      std::lock_guard lock(mu_);
      batch.swap(pending_);  // whatever came in, or came back, while the last batch was written
      if (batch.empty()) return;
      if (++final_tries > 3) {
        spdlog::error("ledger: {} entries could not be written before stopping", batch.size());
        return;
      }
    }
    if (!batch.empty()) write(batch);
  }
}

}  // namespace plexus::ledger
