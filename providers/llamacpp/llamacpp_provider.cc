// The "llamacpp" provider: llama.cpp's server. Chat goes through its OpenAI-compatible endpoint
// (which takes llama.cpp's native sampling extras, repeat_penalty, top_k, min_p, seed, as they
// come), its "timings" become usage and tokens per second, and its /health and /props say
// whether it is ready (503 while a model loads) and how long its context is.
#include <nlohmann/json.hpp>

#include <stdexcept>

#include "common/http_get.hpp"
#include "common/openai_relay.hpp"
#include "plexus/provider_abi.hpp"

namespace plexus {
namespace {

using nlohmann::json;

class LlamaCppProvider final : public OpenAiCompatibleProvider {
 public:
  using OpenAiCompatibleProvider::OpenAiCompatibleProvider;

  // /health answers 200 when a model is loaded and 503 while loading; /props carries n_ctx.
  bool poll_status(std::function<void(BackendStatus)> done) override {
    auto timeout = std::min(settings_.spec.connect_timeout * 2, std::chrono::milliseconds(5000));
    HttpClient* http = &host_.http;
    std::string base = settings_.spec.url;
    Headers headers;
    if (!settings_.spec.api_key.empty()) headers.emplace_back("Authorization", "Bearer " + settings_.spec.api_key);
    http_get(*http, base + "/health", headers, timeout,
             [http, base, headers, timeout, done = std::move(done)](int status, const std::string& body) {
               BackendStatus st;
               if (status != 200) {
                 st.ready = false;
                 json doc = json::parse(body, nullptr, false);
                 st.detail = status == 0 ? "unreachable"
                             : doc.is_object() && doc.contains("error") && doc["error"].is_object()
                                 ? doc["error"].value("message", "not ready")
                                 : "HTTP " + std::to_string(status);
                 done(st);
                 return;
               }
               http_get(*http, base + "/props", headers, timeout, [st, done](int status, const std::string& body) mutable {
                 json doc = json::parse(body, nullptr, false);
                 if (status == 200 && doc.is_object() && doc.contains("default_generation_settings"))
                   st.context_length = doc["default_generation_settings"].value("n_ctx", 0);
                 done(st);
               });
             });
    return true;
  }
};

std::unique_ptr<Provider> make_llamacpp_provider(const UpstreamSpec& spec, ProviderHost& host) {
  if (spec.url.empty())
    throw std::invalid_argument("url: the llamacpp provider needs the server's address, e.g. http://127.0.0.1:8080");
  OpenAiUpstream settings{spec, {}, {"/v1/chat/completions", true, "/v1/embeddings"}};
  if (settings.spec.url.size() >= 3 && settings.spec.url.compare(settings.spec.url.size() - 3, 3, "/v1") == 0)
    settings.spec.url.resize(settings.spec.url.size() - 3);  // /health and /props live at the root
  return std::make_unique<LlamaCppProvider>(std::move(settings), host);
}

// No options: any key in "options" is refused, naming it.
const ConfigSchema& llamacpp_options() {
  static const ConfigSchema none;
  return none;
}

}  // namespace
}  // namespace plexus

PLEXUS_PROVIDER(plexus::make_llamacpp_provider)
PLEXUS_PROVIDER_OPTIONS(plexus::llamacpp_options)
