#include "common/upstream_errors.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>

namespace plexus {

Error transport_error(TransferError e, std::string_view detail, const std::string& upstream) {
  std::string where = "upstream '" + upstream + "': ";
  switch (e) {
    case TransferError::kConnect:
      return Error::upstream(502, where + "connection failed (" + std::string(detail) + ")", "upstream_unreachable");
    case TransferError::kConnectTimeout:
    case TransferError::kFirstByteTimeout:
    case TransferError::kIdleTimeout:
      return Error::upstream(504, where + "timed out: " + std::string(detail), "upstream_timeout");
    default:
      return Error::upstream(502, where + "broken response (" + std::string(detail) + ")", "upstream_protocol_error");
  }
}

bool read_error_body(std::string_view body, Error& e) {
  using nlohmann::json;
  json doc = json::parse(body, nullptr, false);
  if (!doc.is_object() || !doc.contains("error")) return false;
  const json& err = doc["error"];
  if (err.is_object()) {
    for (auto [key, field] : {std::pair{"message", &e.message}, std::pair{"type", &e.type},
                              std::pair{"param", &e.param}, std::pair{"code", &e.code}})
      if (err.contains(key) && err[key].is_string()) *field = err[key].get<std::string>();
  } else if (err.is_string()) {
    e.message = err.get<std::string>();
  }
  return true;
}

Error http_error(int status, std::string_view body, const std::string& upstream, bool& retryable) {
  bool client_fault = status >= 400 && status < 500 && status != 429 && status != 408;
  retryable = !client_fault;
  Error e = Error::upstream(status, "upstream '" + upstream + "' returned HTTP " + std::to_string(status),
                            "upstream_error");
  read_error_body(body, e);
  e.status = client_fault || status == 429 ? status : 502;
  if (!client_fault) {  // the client did nothing wrong: say which upstream failed, and how
    if (e.message.rfind("upstream '", 0) != 0)
      e.message = "upstream '" + upstream + "' returned HTTP " + std::to_string(status) + ": " + e.message;
    e.type = "upstream_error";
  } else if (e.type == "upstream_error" || e.type == "error") {
    e.type = "invalid_request_error";
  }
  return e;
}

std::chrono::seconds retry_after(const Headers& headers) {
  for (const auto& [name, value] : headers) {
    if (name != "retry-after") continue;  // the host lower-cases response header names
    char* end = nullptr;
    long n = std::strtol(value.c_str(), &end, 10);
    if (end != value.c_str() && *end == '\0' && n > 0) return std::chrono::seconds(std::min(n, 3600L));
  }
  return std::chrono::seconds(0);
}

}  // namespace plexus
