#pragma once
// `plexus keys create|list|revoke`: the admin API's keys endpoints from a shell. Returns the
// exit status (0 done, 1 refused by the router, 2 usage or no answer).
#include <string>
#include <vector>

namespace plexus::cli {

int keys_command(const std::vector<std::string>& args);

}  // namespace plexus::cli
