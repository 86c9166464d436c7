#pragma once
#include <string>

namespace plexus {

// A whole file's bytes; empty when it cannot be read (callers that must tell check existence first).
std::string read_file(const std::string& path);

}  // namespace plexus
