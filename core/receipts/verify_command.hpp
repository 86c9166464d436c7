#pragma once
// `plexus receipt verify RECEIPT [--body FILE] [--jwks FILE|URL]`: checks a receipt's signature
// against the router's published keys and, given the request body, its hash. Prints what the
// receipt claims, or why it is not genuine; returns the exit status (0 genuine, 1 not, 2 usage).
#include <string>
#include <vector>

namespace plexus::receipts {

int verify_command(const std::vector<std::string>& args);

}  // namespace plexus::receipts
