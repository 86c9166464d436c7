// The "openai" provider: any OpenAI-compatible server (vLLM, llama.cpp server's /v1, LM Studio,
// another gateway), through the shared relay (providers/common/openai_relay.hpp).
#include <nlohmann/json.hpp>

#include <stdexcept>

#include "common/openai_relay.hpp"
#include "plexus/provider_abi.hpp"

namespace plexus {
namespace {

using nlohmann::json;

std::unique_ptr<Provider> make_openai_provider(const UpstreamSpec& spec, ProviderHost& host) {
  if (spec.url.empty())
    throw std::invalid_argument(
        "url: the openai provider needs the server's base URL, e.g. http://127.0.0.1:8081/v1");
  OpenAiUpstream settings{spec, {}, {}};
  json options = json::parse(spec.options_json);
  for (const auto& [key, value] : options.items()) {
    if (key != "headers")
      throw std::invalid_argument("options." + key + ": unknown key; allowed keys are: headers");
    if (!value.is_object())
      throw std::invalid_argument("options.headers: expected an object of header names to values");
    for (const auto& [name, v] : value.items()) {
      if (!v.is_string())
        throw std::invalid_argument("options.headers." + name + ": expected a string");
      settings.extra_headers.emplace_back(name, v.get<std::string>());
    }
  }
  return std::make_unique<OpenAiCompatibleProvider>(std::move(settings), host);
}

}  // namespace
}  // namespace plexus

PLEXUS_PROVIDER(plexus::make_openai_provider)
