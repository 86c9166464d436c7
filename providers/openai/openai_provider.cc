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
  json options = json::parse(spec.options_json);  // checked against openai_options()
  for (const auto& [name, value] : options["headers"].items()) settings.extra_headers.emplace_back(name, value.get<std::string>());
  return std::make_unique<OpenAiCompatibleProvider>(std::move(settings), host);
}

const ConfigSchema& openai_options() {
  static const ConfigSchema schema = {
      field::string_map("headers", "Headers sent with every request to this upstream (an OpenAI-Organization, say)"),
  };
  return schema;
}

}  // namespace
}  // namespace plexus

PLEXUS_PROVIDER(plexus::make_openai_provider)
PLEXUS_PROVIDER_OPTIONS(plexus::openai_options)
