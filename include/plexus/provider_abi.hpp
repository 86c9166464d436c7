#pragma once
// How a provider adapter exports itself from its shared library (providers/<name>/):
//
//   PLEXUS_PROVIDER(make_my_provider)
//
// where make_my_provider is a plexus::ProviderFactory. The router loads
// "libplexus_provider_<name>.so" for "provider": "<name>" from its providers folder, checks
// plexus_provider_abi() against kProviderAbiVersion first, and refuses a mismatch naming the file.
// Like native plugins, adapters are built with the router's compiler (std types cross the line).
//
// An adapter with options declares them once more, as a schema (plexus/config_schema.hpp):
//
//   PLEXUS_PROVIDER_OPTIONS(my_options)   // const plexus::ConfigSchema& my_options()
//
// The router then checks each upstream's "options" against it (unknown keys, types, ranges, with
// the config file and key path in the error) and hands the factory the checked object with every
// default filled in. Without it, options arrive as written.
#include <string>

#include "plexus/config_schema.hpp"
#include "plexus/provider.hpp"

namespace plexus {

// Bump on any change to provider.hpp, http_client.hpp or this file that breaks compatibility.
// 2: Provider::embed, EmbeddingRequest, Capabilities::embeddings.
inline constexpr int kProviderAbiVersion = 2;

}  // namespace plexus

#define PLEXUS_PROVIDER(factory)                                                              \
  extern "C" __attribute__((visibility("default"))) int plexus_provider_abi() {              \
    return ::plexus::kProviderAbiVersion;                                                     \
  }                                                                                           \
  extern "C" __attribute__((visibility("default"))) ::plexus::Provider* plexus_provider_create( \
      const ::plexus::UpstreamSpec* spec, ::plexus::ProviderHost* host, std::string* error) {  \
    try {                                                                                     \
      return factory(*spec, *host).release();                                                 \
    } catch (const std::exception& e) {                                                       \
      *error = e.what();                                                                      \
    } catch (...) {                                                                           \
      *error = "unknown exception";                                                           \
    }                                                                                         \
    return nullptr;                                                                           \
  }

#define PLEXUS_PROVIDER_OPTIONS(schema)                                                        \
  extern "C" __attribute__((visibility("default"))) const ::plexus::ConfigSchema*            \
  plexus_provider_options() {                                                                 \
    return &schema();                                                                         \
  }
