// What anyone may ask the ledger (the public receipt pages) is bounded: while the ledger's thread
// is busy, no more than Ledger::kMaxQueuedQueries wait; more are refused at once, not queued.
#include <gtest/gtest.h>

#include <filesystem>
#include <future>

#include "ledger/ledger.hpp"
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

}  // namespace
}  // namespace plexus::ledger
