#pragma once
#include <string>
#include <string_view>

namespace plexus {

// "req_" + 24 random hex digits.
std::string new_request_id();
// A client-supplied X-Request-Id is kept when it is short and plain (letters, digits, - _ . :).
bool is_acceptable_request_id(std::string_view id);

}  // namespace plexus
