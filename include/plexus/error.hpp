#pragma once
// An OpenAI-shaped error: what a client sees as {"error":{"message","type","param","code"}}.
// Std-only on purpose: plugins and providers include this without pulling in any JSON library.
#include <string>

namespace plexus {

struct Error {
  int status = 500;         // HTTP status the client gets when no byte has been sent yet
  std::string message;      // human-readable, never contains prompt or completion text
  std::string type;         // OpenAI's error "type": invalid_request_error, authentication_error...
  std::string param;        // the offending request field, empty when none
  std::string code;         // machine-readable code: model_not_found, upstream_timeout...

  static Error invalid_request(std::string message, std::string param = {},
                               std::string code = {}) {
    return {400, std::move(message), "invalid_request_error", std::move(param), std::move(code)};
  }
  static Error upstream(int status, std::string message, std::string code) {
    return {status, std::move(message), "upstream_error", {}, std::move(code)};
  }
};

}  // namespace plexus
