#include "dialects/translated.hpp"

#include <random>

namespace plexus::dialects {

std::string random_id(const char* prefix) {
  // Unique, not secret: ids name answers and their items, they grant nothing.
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string id = prefix;
  for (int word = 0; word < 2; ++word) {
    std::uint64_t bits = rng();
    for (int i = 0; i < 12; ++i, bits >>= 4) id += hex[bits & 15];
  }
  return id;
}

}  // namespace plexus::dialects
