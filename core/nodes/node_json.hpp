#pragma once
// A node as GET /v1/nodes shows it (and, later, the dashboard).
#include <nlohmann/json_fwd.hpp>

#include "nodes/node.hpp"

namespace plexus {

nlohmann::json describe_node(const Node& node);

}  // namespace plexus
