#include "gateway/error_body.hpp"

#include <nlohmann/json.hpp>

namespace plexus {

std::string error_body(const Error& e) {
  nlohmann::json j = {{"error",
                       {{"message", e.message},
                        {"type", e.type.empty() ? "server_error" : e.type},
                        {"param", e.param.empty() ? nlohmann::json() : nlohmann::json(e.param)},
                        {"code", e.code.empty() ? nlohmann::json() : nlohmann::json(e.code)}}}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace plexus
