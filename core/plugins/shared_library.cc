#define BOOST_DLL_USE_STD_FS 1
#include "plugins/shared_library.hpp"

#include <boost/dll/shared_library.hpp>

#include <filesystem>
#include <stdexcept>

namespace plexus {
namespace dll = boost::dll;

OpenedLibrary open_plexus_library(const std::string& file, const char* abi_symbol,
                                  const char* create_symbol, int expected_abi,
                                  const char* export_macro) {
  if (!std::filesystem::exists(file)) throw std::runtime_error("file not found");
  auto lib = std::make_shared<dll::shared_library>();
  try {
    lib->load(file, dll::load_mode::rtld_now | dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("cannot load: ") + e.what());
  }
  if (!lib->has(abi_symbol) || !lib->has(create_symbol))
    throw std::runtime_error(std::string("not a plexus library (no ") + abi_symbol + "/" +
                             create_symbol + "; end the source with " + export_macro + ")");
  int abi = lib->get<int()>(abi_symbol)();
  if (abi != expected_abi)
    throw std::runtime_error("built for ABI " + std::to_string(abi) + ", this router speaks ABI " +
                             std::to_string(expected_abi) +
                             "; rebuild it against this version's include/plexus");
  OpenedLibrary out;
  out.create = reinterpret_cast<void*>(&lib->get<char>(create_symbol));
  out.handle = lib;
  return out;
}

void* find_symbol(const OpenedLibrary& library, const char* name) {
  auto lib = std::static_pointer_cast<dll::shared_library>(library.handle);
  return lib && lib->has(name) ? reinterpret_cast<void*>(&lib->get<char>(name)) : nullptr;
}

}  // namespace plexus
