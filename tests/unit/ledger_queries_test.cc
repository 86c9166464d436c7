// What anyone may ask the ledger (the public receipt pages) is bounded: while the ledger's thread
// is busy, no more than Ledger::kMaxQueuedQueries wait; more are refused at once, not queued.
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <thread>
#include <vector>

#include "ledger/ledger.hpp"
#include "ledger/migrations.hpp"
#include "ledger/sqlite_store.hpp"
#include "loop/event_loop.hpp"

namespace plexus::ledger {
namespace {

TEST(LedgerQueries, PublicQueriesAreRefusedPastTheBoundWhileTheLedgerIsBusy) {
  auto path = std::filesystem::temp_directory_path() / ("plexus-ledger-queries-" + std::to_string(::getpid()) + ".sqlite");
  std::filesystem::remove(path);
  EventLoop loop;  // not running: answers wait in its inbox
  {
    Ledger ledger(open_sqlite(path.string()), std::chrono::milliseconds(10));
    std::promise<void> release;
    auto released = release.get_future().share();
    std::promise<void> started;
    ledger.query([&](Store&) {
      started.set_value();
      released.wait();  // the ledger's thread is busy with this one
      return nlohmann::json(true);
    }, loop, [](nlohmann::json) {});
    started.get_future().wait();
    std::size_t accepted = 0;
    for (std::size_t i = 0; i < Ledger::kMaxQueuedQueries + 10; ++i)
      accepted += ledger.try_query([](Store&) { return nlohmann::json(true); }, loop, [](nlohmann::json) {});
    EXPECT_EQ(accepted, Ledger::kMaxQueuedQueries);
    release.set_value();
  }
  std::filesystem::remove(path);
}

// Two processes on one ledger file (a router and a --check-config, two routers starting): one
// that opens it while the other holds a write lock waits for the lock instead of failing.
TEST(LedgerSqlite, OpeningWaitsForAnotherWritersLock) {
  auto path = std::filesystem::temp_directory_path() / ("plexus-ledger-lock-" + std::to_string(::getpid()) + ".sqlite");
  std::filesystem::remove(path);
  // A file another process has just created and still holds, not yet in WAL mode (two
  // processes opening a new ledger at once: the switch to WAL needs the lock).
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path.string().c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "CREATE TABLE t (x); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1)", nullptr, nullptr, nullptr), SQLITE_OK);
  auto released = std::async(std::launch::async, [other] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr);
  });
  EXPECT_NO_THROW(open_sqlite(path.string()));
  released.get();
  sqlite3_close(other);
  std::filesystem::remove(path);
  std::filesystem::remove(path.string() + "-wal");
  std::filesystem::remove(path.string() + "-shm");
}

// Several processes creating one new ledger at once (CI runs the cli suite at 1 and 4 loops side by
// side, each with --check-config of the shipped example): each either applies a migration or,
// having waited for the lock, finds it applied. None fails with "database is locked" or runs a
// migration twice ("table requests already exists").
TEST(LedgerSqlite, ConcurrentOpensOfANewFileAllMigrateIt) {
  for (int round = 0; round < 20; ++round) {
    auto path = std::filesystem::temp_directory_path() /
                ("plexus-ledger-race-" + std::to_string(::getpid()) + "-" + std::to_string(round) + ".sqlite");
    std::filesystem::remove(path);
    std::vector<std::future<std::string>> opens;
    for (int i = 0; i < 4; ++i)
      opens.push_back(std::async(std::launch::async, [&path]() -> std::string {
        try {
          return std::to_string(open_sqlite(path.string())->schema_version());
        } catch (const std::exception& e) {
          return e.what();
        }
      }));
    const auto newest = std::to_string(migrations().back().version);
    for (auto& open : opens) EXPECT_EQ(open.get(), newest) << "round " << round;
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
  }
}

}  // namespace
}  // namespace plexus::ledger
