#include "util/beside_binary.hpp"

#include <unistd.h>

#include <filesystem>

namespace plexus {

std::string beside_binary(const std::string& name) {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return name;
  return (std::filesystem::path(std::string(buf, static_cast<size_t>(n))).parent_path() / name).string();
}

}  // namespace plexus
