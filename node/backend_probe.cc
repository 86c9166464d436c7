#include "backend_probe.hpp"

#include <curl/curl.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <mutex>
#include <string_view>

namespace plexus::node {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxBodyBytes = 4u << 20;
constexpr long kConnectTimeoutMs = 300;
constexpr long kTotalTimeoutMs = 2000;

// One identify() call's view of a backend: each path is fetched at most once (/v1/models serves
// three of the checks), and only a 200 whose body is JSON counts as an answer.
class Probe {
 public:
  Probe(std::string base, const Fetch& fetch) : base_(std::move(base)), fetch_(fetch) {}

  const std::string& base() const { return base_; }

  // The JSON at `path`, or null when it answered otherwise (or not at all).
  const json& get(const std::string& path) {
    auto it = answers_.find(path);
    if (it != answers_.end()) return it->second;
    ProbeResponse response;
    try {
      response = fetch_(base_ + path);
    } catch (...) {
      response = {};  // a Fetch that throws has not got an answer
    }
    if (response.status != 0) anything_answered_ = true;
    json doc;  // null
    if (response.status == 200) {
      doc = json::parse(response.body, nullptr, false);
      if (doc.is_discarded()) doc = nullptr;
    }
    return answers_.emplace(path, std::move(doc)).first->second;
  }

  bool anything_answered() const { return anything_answered_; }

 private:
  std::string base_;
  const Fetch& fetch_;
  std::map<std::string, json> answers_;
  bool anything_answered_ = false;
};

const json* member(const json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

const json* array_member(const json& object, const char* key) {
  const json* value = member(object, key);
  return value && value->is_array() ? value : nullptr;
}

// A string member, else "".
std::string string_member(const json& object, const char* key) {
  const json* value = member(object, key);
  return value && value->is_string() ? value->get<std::string>() : "";
}

// A positive number member (token counts), else 0.
std::int64_t count_member(const json& object, const char* key) {
  const json* value = member(object, key);
  if (!value || !value->is_number()) return 0;
  double n = value->get<double>();
  return n >= 1 && n < 9.2e18 ? static_cast<std::int64_t>(n) : 0;
}

void add_unique(std::vector<std::string>& list, const std::string& name) {
  if (!name.empty() && std::find(list.begin(), list.end(), name) == list.end()) list.push_back(name);
}

DetectedBackend backend_of(BackendKind kind, const std::string& base) {
  DetectedBackend b;
  b.kind = kind;
  b.url = base;
  switch (kind) {
    case BackendKind::kOllama:
      b.kind_name = "Ollama";
      b.slug = "ollama";
      b.provider = "ollama";
      break;
    case BackendKind::kLlamaCpp:
      b.kind_name = "llama.cpp server";
      b.slug = "llamacpp";
      b.provider = "llamacpp";
      break;
    case BackendKind::kLmStudio:
      b.kind_name = "LM Studio";
      b.slug = "lmstudio";
      b.provider = "openai";
      break;
    case BackendKind::kVllm:
      b.kind_name = "vLLM";
      b.slug = "vllm";
      b.provider = "openai";
      break;
    case BackendKind::kOpenAiCompatible:
      b.kind_name = "OpenAI-compatible server";
      b.slug = "openai";
      b.provider = "openai";
      break;
  }
  b.provider_url = b.provider == "openai" ? base + "/v1" : base;
  return b;
}

// Ollama lists models as {"name": "llama3.2:latest", "model": "llama3.2:latest", ...}.
std::string ollama_model_name(const json& entry) {
  std::string name = string_member(entry, "name");
  return name.empty() ? string_member(entry, "model") : name;
}

std::optional<DetectedBackend> as_ollama(Probe& probe) {
  // /api/version first: llama.cpp's server answers /api/tags too (for Ollama clients), not this.
  if (string_member(probe.get("/api/version"), "version").empty()) return std::nullopt;
  const json* tags = array_member(probe.get("/api/tags"), "models");
  if (!tags) return std::nullopt;
  auto b = backend_of(BackendKind::kOllama, probe.base());
  for (const auto& entry : *tags) add_unique(b.models, ollama_model_name(entry));
  if (const json* running = array_member(probe.get("/api/ps"), "models")) {
    b.loaded_known = true;
    for (const auto& entry : *running) {
      std::string name = ollama_model_name(entry);
      if (name.empty()) continue;
      add_unique(b.loaded, name);
      add_unique(b.models, name);
      b.context_length = std::max(b.context_length, count_member(entry, "context_length"));
    }
  }
  return b;
}

// A router-mode entry says {"status": {"value": "loaded" | "loading" | "unloaded" | "sleeping"...}};
// a single-model server's one entry has no status: the model it serves is loaded.
bool llamacpp_entry_loaded(const json& entry) {
  const json* status = member(entry, "status");
  if (!status) return true;
  if (status->is_string()) return status->get<std::string>() == "loaded";
  return string_member(*status, "value") == "loaded";
}

std::optional<DetectedBackend> as_llamacpp(Probe& probe) {
  const json& props = probe.get("/props");
  const json* settings = member(props, "default_generation_settings");
  if (!settings || !settings->is_object()) return std::nullopt;
  auto b = backend_of(BackendKind::kLlamaCpp, probe.base());
  b.context_length = count_member(*settings, "n_ctx");
  if (b.context_length == 0) b.context_length = count_member(props, "n_ctx");
  b.loaded_known = true;
  if (const json* data = array_member(probe.get("/v1/models"), "data")) {
    for (const auto& entry : *data) {
      std::string id = string_member(entry, "id");
      if (id.empty()) continue;
      add_unique(b.models, id);
      if (llamacpp_entry_loaded(entry)) add_unique(b.loaded, id);
    }
  } else if (string_member(props, "role") != "router") {
    // No model list (an old server): /props names the one model; the router's says "none".
    for (const char* key : {"model_alias", "model_path"}) {
      std::string name = string_member(props, key);
      if (name.empty() || name == "none") continue;
      add_unique(b.models, name);
      add_unique(b.loaded, name);
      break;
    }
  }
  return b;
}

std::optional<DetectedBackend> as_lmstudio(Probe& probe) {
  const json* data = array_member(probe.get("/api/v0/models"), "data");
  if (!data) return std::nullopt;
  // LM Studio's own shape: entries with "type" and "state". (With no model downloaded it cannot be
  // told apart, and passes as an OpenAI-compatible server: the same adapter serves both.)
  bool shaped = std::any_of(data->begin(), data->end(), [](const json& entry) {
    return !string_member(entry, "type").empty() && !string_member(entry, "state").empty();
  });
  if (!shaped) return std::nullopt;
  auto b = backend_of(BackendKind::kLmStudio, probe.base());
  b.loaded_known = true;
  std::int64_t loaded_ctx = 0, loaded_max_ctx = 0, any_max_ctx = 0;
  for (const auto& entry : *data) {
    std::string type = string_member(entry, "type");
    std::string id = string_member(entry, "id");
    if ((type != "llm" && type != "vlm") || id.empty()) continue;  // embeddings cannot chat
    add_unique(b.models, id);
    std::int64_t max_ctx = count_member(entry, "max_context_length");
    any_max_ctx = std::max(any_max_ctx, max_ctx);
    if (string_member(entry, "state") != "loaded") continue;
    add_unique(b.loaded, id);
    loaded_ctx = std::max(loaded_ctx, count_member(entry, "loaded_context_length"));
    loaded_max_ctx = std::max(loaded_max_ctx, max_ctx);
  }
  // What a loaded model was given beats what it could take; nothing loaded: what models can take.
  b.context_length = loaded_ctx ? loaded_ctx : loaded_max_ctx ? loaded_max_ctx : any_max_ctx;
  return b;
}

std::optional<DetectedBackend> as_vllm(Probe& probe) {
  if (string_member(probe.get("/version"), "version").empty()) return std::nullopt;
  const json* data = array_member(probe.get("/v1/models"), "data");
  if (!data) return std::nullopt;
  bool owned = std::any_of(data->begin(), data->end(),
                           [](const json& entry) { return string_member(entry, "owned_by") == "vllm"; });
  if (!owned) return std::nullopt;
  auto b = backend_of(BackendKind::kVllm, probe.base());
  b.loaded_known = true;  // vLLM serves only what it loaded at start (LoRA adapters included)
  for (const auto& entry : *data) {
    std::string id = string_member(entry, "id");
    if (id.empty()) continue;
    add_unique(b.models, id);
    add_unique(b.loaded, id);
    b.context_length = std::max(b.context_length, count_member(entry, "max_model_len"));
  }
  return b;
}

std::optional<DetectedBackend> as_openai_compatible(Probe& probe) {
  const json& list = probe.get("/v1/models");
  if (const json* object = member(list, "object"); object && *object != "list") return std::nullopt;
  const json* data = array_member(list, "data");
  if (!data) return std::nullopt;
  auto b = backend_of(BackendKind::kOpenAiCompatible, probe.base());
  for (const auto& entry : *data) {
    add_unique(b.models, string_member(entry, "id"));
    b.context_length = std::max(b.context_length, count_member(entry, "max_model_len"));  // SGLang's
  }
  if (b.models.empty() && !data->empty()) return std::nullopt;  // a list, but not of models
  return b;
}

std::string without_trailing_slashes(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

struct BodySink {
  std::string body;
  bool overflow = false;
};

size_t collect_body(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<BodySink*>(user);
  const size_t bytes = size * count;
  if (sink->body.size() + bytes > kMaxBodyBytes) {
    sink->overflow = true;
    return 0;  // curl stops the transfer
  }
  try {
    sink->body.append(data, bytes);
  } catch (...) {
    return 0;
  }
  return bytes;
}

}  // namespace

std::optional<DetectedBackend> identify(const std::string& base_url, const Fetch& fetch) {
  try {
    Probe probe(without_trailing_slashes(base_url), fetch);
    // Nothing listening (or a port that swallows requests): one request's timeout, not five.
    probe.get("/api/version");
    if (!probe.anything_answered()) return std::nullopt;
    for (auto check : {as_ollama, as_llamacpp, as_lmstudio, as_vllm, as_openai_compatible})
      if (auto backend = check(probe)) return backend;
  } catch (...) {
    // Wrong JSON types are checked above; this is for allocation failures and the like.
  }
  return std::nullopt;
}

ProbeResponse http_get(const std::string& url) {
  static std::once_flag curl_init;
  std::call_once(curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURL* curl = curl_easy_init();
  if (!curl) return {};
  BodySink sink;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, kConnectTimeoutMs);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, kTotalTimeoutMs);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM: safe off the main thread
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500  // 7.85
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "plexus-node");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &collect_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  CURLcode result = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  if (result != CURLE_OK || sink.overflow) return {};
  return {static_cast<int>(status), std::move(sink.body)};
}

std::vector<std::string> default_probe_urls() {
  return {"http://127.0.0.1:8080", "http://127.0.0.1:11434", "http://127.0.0.1:1234", "http://127.0.0.1:8000"};
}

std::vector<DetectedBackend> detect(const std::vector<std::string>& urls, const Fetch& fetch) {
  std::vector<DetectedBackend> found;
  for (const auto& url : urls)
    if (auto backend = identify(url, fetch)) found.push_back(std::move(*backend));
  return found;
}

}  // namespace plexus::node
