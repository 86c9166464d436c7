#pragma once
// The router's own config sections declared as schemas (plexus/config_schema.hpp), so they are
// checked by the same code as plugin configs and provider options, and `plexus --print-schema`
// documents them from the same source.
#include <string>
#include <utility>
#include <vector>

#include "plexus/config_schema.hpp"

namespace plexus::config {

const ConfigSchema& limits_schema();          // "limits"
const ConfigSchema& workers_schema();         // "workers"
const ConfigSchema& log_schema();             // "log"
const ConfigSchema& ledger_schema();          // "ledger"
const ConfigSchema& receipts_schema();        // "receipts"
const ConfigSchema& web_schema();             // "web"
const ConfigSchema& cluster_schema();         // "cluster"
const ConfigSchema& weights_schema();         // "routing.weights"
const ConfigSchema& breaker_schema();         // "routing.breaker"
const ConfigSchema& prefix_affinity_schema(); // "routing.prefix_affinity"

// Every declared section with its key path, in the order the docs list them.
std::vector<std::pair<std::string, const ConfigSchema*>> declared_sections();

}  // namespace plexus::config
