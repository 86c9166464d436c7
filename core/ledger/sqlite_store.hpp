#pragma once
// The ledger on SQLite (Debian's libsqlite3): the default, embedded, one file. WAL mode, so a
// reader never waits for the writer and a crash loses only what was not yet committed.
#include <memory>
#include <string>

#include "ledger/ledger_store.hpp"

struct sqlite3;

namespace plexus::ledger {

// Throws std::runtime_error naming the file when it cannot be opened or migrated.
// `chain`: this router's receipt chain (cluster.id; "" for a router alone).
std::unique_ptr<Store> open_sqlite(const std::string& path, const std::string& chain = "");

}  // namespace plexus::ledger
