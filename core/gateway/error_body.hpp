#pragma once
#include <string>

#include "plexus/error.hpp"

namespace plexus {

// {"error":{"message":..,"type":..,"param":..|null,"code":..|null}}
std::string error_body(const Error& error);

}  // namespace plexus
