#pragma once
// Finding the LLM backend that runs beside the node and telling which one it is, from what its own
// endpoints answer (never from its port: anyone can run anything on 8080), so the node can offer
// its models to the router through the right Plexus adapter.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace plexus::node {

enum class BackendKind { kLlamaCpp, kOllama, kLmStudio, kVllm, kOpenAiCompatible };

struct DetectedBackend {
  BackendKind kind = BackendKind::kOpenAiCompatible;
  std::string kind_name;     // "llama.cpp server", "Ollama", "LM Studio", "vLLM", "OpenAI-compatible server"
  std::string slug;          // the same for machines: "llamacpp", "ollama", "lmstudio", "vllm", "openai"
  std::string url;           // base URL, no trailing slash, e.g. "http://127.0.0.1:11434"
  std::string provider;      // the Plexus adapter that serves it: "llamacpp", "ollama" or "openai"
  std::string provider_url;  // the url that adapter wants: the base URL, or base + "/v1" for "openai"
  std::vector<std::string> models;  // every model the backend can serve
  std::vector<std::string> loaded;  // those in memory now (hot)
  bool loaded_known = false;        // false: `loaded` says nothing
  std::int64_t context_length = 0;  // 0 unknown; see identify() for which model's
};

// What one HTTP GET returned; status 0 = no answer (refused, timed out, or a body over the cap).
struct ProbeResponse {
  int status = 0;
  std::string body;
};
using Fetch = std::function<ProbeResponse(const std::string& url)>;

// Identifies the backend at base_url, checking in this order (the first that fits wins):
//  - Ollama: GET /api/version {"version": "..."} and GET /api/tags {"models": [{"name": ...}]};
//    loaded from GET /api/ps {"models": [...]} (loaded_known when /api/ps answers), context_length
//    the largest "context_length" /api/ps reports. (llama.cpp also answers /api/tags, not
//    /api/version.)
//  - llama.cpp server: GET /props holding "default_generation_settings" (n_ctx inside it, else a
//    top-level "n_ctx"); models from GET /v1/models data[].id; loaded_known. In router mode
//    (several models, /props says "role": "router", n_ctx 0) only the entries whose
//    "status"."value" is "loaded" are loaded; a single-model server's one model is.
//  - LM Studio: GET /api/v0/models {"data": [{"id", "type", "state", "max_context_length",
//    "loaded_context_length"?}]}: the "llm" and "vlm" entries only; loaded = state "loaded";
//    context_length the largest loaded_context_length of the loaded ones, else the largest
//    max_context_length. (LM Studio answers unknown paths 200 {"error": ...}: shapes, not
//    statuses, decide.)
//  - vLLM: GET /version {"version": "..."} and GET /v1/models with an entry "owned_by": "vllm";
//    all listed models (LoRA adapters included) are loaded; context_length the largest
//    max_model_len.
//  - OpenAI-compatible: GET /v1/models {"data": [{"id": ...}]} ("object", if present, "list").
// Anything else (no answer, HTML, 404s, JSON of another shape): std::nullopt. Never throws, even
// if `fetch` does (that is taken as no answer). Stops at once when the first request gets no answer.
std::optional<DetectedBackend> identify(const std::string& base_url, const Fetch& fetch);

// A real Fetch: libcurl's easy API, GET, 300 ms to connect, 2 s in all, no proxy (the backend is
// local; a proxy from the environment would only get in the way), no redirects, body capped at
// 4 MiB. Blocking: call off the event loop.
ProbeResponse http_get(const std::string& url);

// The loopback addresses probed by default: llama.cpp 8080, Ollama 11434, LM Studio 1234, vLLM 8000.
std::vector<std::string> default_probe_urls();

// identify() on each URL, one after the other; those found, in the given order.
std::vector<DetectedBackend> detect(const std::vector<std::string>& urls, const Fetch& fetch = http_get);

}  // namespace plexus::node
