#include "util/read_file.hpp"

#include <fstream>
#include <sstream>

namespace plexus {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace plexus
