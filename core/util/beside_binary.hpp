#pragma once
#include <string>

namespace plexus {

// `name` in the folder of the running binary (build/providers, build/web): where the build puts
// what the binary loads at run time. Just `name` when the binary's path cannot be read.
std::string beside_binary(const std::string& name);

}  // namespace plexus
