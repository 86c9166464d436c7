#include "common/translated_request.hpp"

namespace plexus {

void unsupported(const std::string& backend, const std::string& message, const std::string& param) {
  throw Invalid{Error::invalid_request("The " + backend + " backend cannot take this request: " + message, param,
                                       "unsupported_by_backend")};
}

nlohmann::json tool_call_arguments(const nlohmann::json& call, std::size_t message, std::size_t index) {
  std::string param = "messages[" + std::to_string(message) + "].tool_calls[" + std::to_string(index) + "].function.arguments";
  const nlohmann::json& fn = call.value("function", nlohmann::json::object());
  if (!fn.contains("arguments") || fn["arguments"].is_null()) return nlohmann::json::object();
  if (!fn["arguments"].is_string()) throw Invalid{Error::invalid_request(param + " must be a string of JSON", param, "invalid_value")};
  const std::string& text = fn["arguments"].get_ref<const std::string&>();
  if (text.empty()) return nlohmann::json::object();
  nlohmann::json args = nlohmann::json::parse(text, nullptr, false);
  if (args.is_discarded()) throw Invalid{Error::invalid_request(param + " is not valid JSON", param, "invalid_value")};
  if (!args.is_object()) throw Invalid{Error::invalid_request(param + " must hold a JSON object", param, "invalid_value")};
  return args;
}

}  // namespace plexus
