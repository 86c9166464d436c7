#pragma once
// The ledger on PostgreSQL (Debian's libpq), for several routers sharing one ledger: the same
// store interface and the same migrations as SQLite.
#include <memory>
#include <string>

#include "ledger/ledger_store.hpp"

namespace plexus::ledger {

// `url`: a libpq connection string (postgresql://user:password@host:port/db). Throws
// std::runtime_error with libpq's reason when it cannot connect or migrate.
// `chain`: this router's receipt chain (cluster.id; "" for a router alone).
std::unique_ptr<Store> open_postgres(const std::string& url, const std::string& chain = "");

}  // namespace plexus::ledger
