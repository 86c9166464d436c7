#pragma once
// Loading plexus shared libraries (native plugins, provider adapters): open, check the exported
// ABI version before touching anything else, and keep each created object's code mapped for as
// long as the object lives.
#include <memory>
#include <string>

namespace plexus {

struct OpenedLibrary {
  std::shared_ptr<void> handle;  // the library; unmapped when the last holder goes
  void* create = nullptr;        // the library's create function
};

// Throws std::runtime_error with the reason only ("file not found", "built for ABI 3, ...");
// callers add which plugin or upstream and which file.
OpenedLibrary open_plexus_library(const std::string& file, const char* abi_symbol,
                                  const char* create_symbol, int expected_abi,
                                  const char* export_macro);  // "PLEXUS_PROVIDER(factory)"

// Another exported symbol of an opened library; null when it has none.
void* find_symbol(const OpenedLibrary& library, const char* name);

// An owning pointer to `object` whose control block also holds the library, destroying the
// object before the library (so no code is unmapped under a live object).
template <class T>
std::shared_ptr<T> keep_library_alive(std::shared_ptr<void> library, std::unique_ptr<T> object) {
  auto holder = std::make_shared<std::pair<std::shared_ptr<void>, std::unique_ptr<T>>>(
      std::move(library), std::move(object));
  return std::shared_ptr<T>(holder, holder->second.get());
}

}  // namespace plexus
