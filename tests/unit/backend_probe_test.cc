#include "backend_probe.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace plexus::node {
namespace {

using Strings = std::vector<std::string>;

// A backend as the probe sees it: what it answers on each path, and on any other path.
struct FakeBackend {
  std::map<std::string, ProbeResponse> routes;
  std::function<ProbeResponse(const std::string& path)> otherwise = [](const std::string&) {
    return ProbeResponse{404, "404 page not found"};
  };
};

// Fake loopback: backends by base URL; a URL of no backend gets no answer (status 0), as a
// refused connection does. Every URL asked is recorded.
class FakeNetwork {
 public:
  void add(const std::string& base, FakeBackend backend) { backends_[base] = std::move(backend); }
  Fetch fetch() {
    return [this](const std::string& url) {
      asked.push_back(url);
      for (const auto& [base, backend] : backends_) {
        if (url.rfind(base + "/", 0) != 0) continue;
        auto path = url.substr(base.size());
        auto it = backend.routes.find(path);
        return it != backend.routes.end() ? it->second : backend.otherwise(path);
      }
      return ProbeResponse{};
    };
  }
  Strings asked;

 private:
  std::map<std::string, FakeBackend> backends_;
};

ProbeResponse ok(std::string body) { return {200, std::move(body)}; }

// --- the real shapes, as each backend answers them ----------------------------------------------

// Ollama 0.12: /api/ps carries context_length; unknown paths are a plain-text 404.
FakeBackend ollama(std::string ps_body) {
  FakeBackend b;
  b.routes["/api/version"] = ok(R"({"version":"0.12.6"})");
  b.routes["/api/tags"] = ok(R"({"models":[
    {"name":"llama3.2:latest","model":"llama3.2:latest","modified_at":"2025-10-20T11:02:33.102548651+02:00",
     "size":2019393189,"digest":"a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
     "details":{"parent_model":"","format":"gguf","family":"llama","families":["llama"],
                "parameter_size":"3.2B","quantization_level":"Q4_K_M"}},
    {"name":"qwen2.5-coder:7b","model":"qwen2.5-coder:7b","modified_at":"2025-10-18T09:12:01.5+02:00",
     "size":4683087332,"digest":"2b0496514337a3d5901f1d253d01726c890b721e891335a56d6e08cedf3e2cb0",
     "details":{"parent_model":"","format":"gguf","family":"qwen2","families":["qwen2"],
                "parameter_size":"7.6B","quantization_level":"Q4_K_M"}}]})");
  b.routes["/api/ps"] = ok(std::move(ps_body));
  b.routes["/v1/models"] = ok(R"({"object":"list","data":[
    {"id":"llama3.2:latest","object":"model","created":1760950953,"owned_by":"library"},
    {"id":"qwen2.5-coder:7b","object":"model","created":1760771521,"owned_by":"library"}]})");
  return b;
}

const char* kOllamaOneLoaded = R"({"models":[
  {"name":"llama3.2:latest","model":"llama3.2:latest","size":3506739200,
   "digest":"a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
   "details":{"parent_model":"","format":"gguf","family":"llama","families":["llama"],
              "parameter_size":"3.2B","quantization_level":"Q4_K_M"},
   "expires_at":"2025-10-20T11:12:40.410716+02:00","size_vram":3506739200,"context_length":4096}]})";

// llama-server with one model (-m ... --alias ...): it also answers /api/tags, for Ollama clients,
// and its /v1/models carries Ollama's "models" next to OpenAI's "data".
FakeBackend llamacpp_single() {
  FakeBackend b;
  b.routes["/health"] = ok(R"({"status":"ok"})");
  b.routes["/props"] = ok(R"({"default_generation_settings":{"id":0,"id_task":-1,"n_ctx":8192,
    "speculative":false,"is_processing":false,"params":{"n_predict":-1,"temperature":0.8,"top_k":40},
    "prompt":"","next_token":{"has_next_token":true,"n_remain":-1}},
    "total_slots":1,"model_alias":"qwen2.5-7b-instruct","model_path":"/models/qwen2.5-7b-instruct-q4_k_m.gguf",
    "chat_template":"{% for message in messages %}...","modalities":{"vision":false},
    "build_info":"b6500-2d4e5f6a","is_sleeping":false})");
  std::string models = R"({"models":[{"name":"qwen2.5-7b-instruct","model":"qwen2.5-7b-instruct",
    "modified_at":"","size":"","digest":"","type":"model","description":"","tags":[""],
    "capabilities":["completion"],"parameters":"","details":{"parent_model":"","format":"gguf","family":"",
    "families":[""],"parameter_size":"","quantization_level":""}}],
    "object":"list","data":[{"id":"qwen2.5-7b-instruct","object":"model","created":1760950953,
    "owned_by":"llamacpp","meta":{"vocab_type":2,"n_vocab":152064,"n_ctx_train":32768,"n_embd":3584,
    "n_params":7615616512,"size":4677120000}}]})";
  b.routes["/v1/models"] = ok(models);
  b.routes["/models"] = ok(models);
  b.routes["/api/tags"] = ok(models);
  b.otherwise = [](const std::string&) {
    return ProbeResponse{404, R"({"error":{"code":404,"message":"File Not Found","type":"not_found_error"}})"};
  };
  return b;
}

// llama-server started without a model (router mode): several models, loaded on demand.
FakeBackend llamacpp_router() {
  FakeBackend b = llamacpp_single();
  b.routes["/props"] = ok(R"({"role":"router","max_instances":4,"models_autoload":true,
    "model_alias":"llama-server","model_path":"none","default_generation_settings":{"params":{},"n_ctx":0},
    "build_info":"b7100-0a1b2c3d"})");
  b.routes["/v1/models"] = ok(R"({"object":"list","data":[
    {"id":"ggml-org/gemma-3-4b-it-GGUF:Q4_K_M","object":"model","owned_by":"llamacpp","created":1764000000,
     "in_cache":true,"path":"/root/.cache/llama.cpp/ggml-org_gemma-3-4b-it-GGUF_gemma-3-4b-it-Q4_K_M.gguf",
     "status":{"value":"loaded","args":["llama-server","-ctx","4096"]}},
    {"id":"unsloth/Qwen3-8B-GGUF:Q4_K_M","object":"model","owned_by":"llamacpp","created":1764000000,
     "in_cache":true,"path":"/root/.cache/llama.cpp/unsloth_Qwen3-8B-GGUF_Qwen3-8B-Q4_K_M.gguf",
     "status":{"value":"unloaded"}},
    {"id":"qwen3-0.6b","object":"model","owned_by":"llamacpp","created":1764000000,
     "status":{"value":"sleeping","args":["llama-server"]}}]})");
  return b;
}

// LM Studio answers every path it does not know with 200 {"error": ...}: only shapes tell.
FakeBackend lmstudio() {
  FakeBackend b;
  b.routes["/api/v0/models"] = ok(R"({"object":"list","data":[
    {"id":"qwen2.5-7b-instruct","object":"model","type":"llm","publisher":"lmstudio-community","arch":"qwen2",
     "compatibility_type":"gguf","quantization":"Q4_K_M","state":"loaded","max_context_length":32768,
     "loaded_context_length":4096},
    {"id":"qwen2-vl-7b-instruct","object":"model","type":"vlm","publisher":"mlx-community","arch":"qwen2_vl",
     "compatibility_type":"mlx","quantization":"4bit","state":"not-loaded","max_context_length":32768},
    {"id":"text-embedding-nomic-embed-text-v1.5","object":"model","type":"embeddings","publisher":"nomic-ai",
     "arch":"nomic-bert","compatibility_type":"gguf","quantization":"Q4_0","state":"loaded",
     "max_context_length":2048}]})");
  b.routes["/v1/models"] = ok(R"({"data":[
    {"id":"qwen2.5-7b-instruct","object":"model","owned_by":"organization_owner"},
    {"id":"qwen2-vl-7b-instruct","object":"model","owned_by":"organization_owner"},
    {"id":"text-embedding-nomic-embed-text-v1.5","object":"model","owned_by":"organization_owner"}],
    "object":"list"})");
  b.otherwise = [](const std::string& path) {
    return ok("{\"error\":\"Unexpected endpoint or method. (GET " + path + ")\"}");
  };
  return b;
}

// vLLM 0.10 serving a base model and a LoRA adapter on it (the adapter has no max_model_len).
FakeBackend vllm() {
  FakeBackend b;
  b.routes["/health"] = ok("");
  b.routes["/version"] = ok(R"({"version":"0.10.1.1"})");
  b.routes["/v1/models"] = ok(R"({"object":"list","data":[
    {"id":"meta-llama/Llama-3.1-8B-Instruct","object":"model","created":1760950953,"owned_by":"vllm",
     "root":"meta-llama/Llama-3.1-8B-Instruct","parent":null,"max_model_len":131072,
     "permission":[{"id":"modelperm-3c1a5f8e2b7d4a9c","object":"model_permission","created":1760950953,
       "allow_create_engine":false,"allow_sampling":true,"allow_logprobs":true,"allow_search_indices":false,
       "allow_view":true,"allow_fine_tuning":false,"organization":"*","group":null,"is_blocking":false}]},
    {"id":"sql-lora","object":"model","created":1760950953,"owned_by":"vllm","root":"/adapters/sql-lora",
     "parent":"meta-llama/Llama-3.1-8B-Instruct","max_model_len":null,"permission":[]}]})");
  b.otherwise = [](const std::string&) { return ProbeResponse{404, R"({"detail":"Not Found"})"}; };
  return b;
}

// Another OpenAI-compatible server (SGLang): a /v1/models of the plain shape, and a /version too.
FakeBackend sglang() {
  FakeBackend b;
  b.routes["/version"] = ok(R"({"version":"0.5.2"})");
  b.routes["/v1/models"] = ok(R"({"object":"list","data":[{"id":"Qwen/Qwen2.5-7B-Instruct","object":"model",
    "created":1760950953,"owned_by":"sglang","root":"Qwen/Qwen2.5-7B-Instruct","max_model_len":32768}]})");
  b.otherwise = [](const std::string&) { return ProbeResponse{404, R"({"detail":"Not Found"})"}; };
  return b;
}

FakeBackend answering_everywhere(ProbeResponse response) {
  FakeBackend b;
  b.otherwise = [response](const std::string&) { return response; };
  return b;
}

std::optional<DetectedBackend> identify_fake(FakeBackend backend, const std::string& base = "http://127.0.0.1:9") {
  FakeNetwork net;
  net.add(base.substr(0, base.find_last_not_of('/') + 1), std::move(backend));  // served at the bare base
  return identify(base, net.fetch());
}

// --- each backend ------------------------------------------------------------------------------

TEST(Identify, Ollama) {
  auto b = identify_fake(ollama(kOllamaOneLoaded), "http://127.0.0.1:11434");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->kind, BackendKind::kOllama);
  EXPECT_EQ(b->kind_name, "Ollama");
  EXPECT_EQ(b->url, "http://127.0.0.1:11434");
  EXPECT_EQ(b->provider, "ollama");
  EXPECT_EQ(b->provider_url, "http://127.0.0.1:11434");
  EXPECT_EQ(b->models, (Strings{"llama3.2:latest", "qwen2.5-coder:7b"}));
  EXPECT_TRUE(b->loaded_known);
  EXPECT_EQ(b->loaded, (Strings{"llama3.2:latest"}));
  EXPECT_EQ(b->context_length, 4096);
}

TEST(Identify, OllamaWithNothingLoadedKnowsThat) {
  auto b = identify_fake(ollama(R"({"models":[]})"));
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->kind, BackendKind::kOllama);
  EXPECT_EQ(b->models.size(), 2u);
  EXPECT_TRUE(b->loaded_known);
  EXPECT_TRUE(b->loaded.empty());
  EXPECT_EQ(b->context_length, 0);
}

TEST(Identify, OllamaWhosePsFailsDoesNotClaimToKnowWhatIsLoaded) {
  for (auto ps : {ProbeResponse{500, R"({"error":"boom"})"}, ok(R"({"models":[{"name":"llama3.2:lat)")}) {
    FakeBackend backend = ollama("");
    backend.routes["/api/ps"] = ps;
    auto b = identify_fake(backend);
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->kind, BackendKind::kOllama);
    EXPECT_FALSE(b->loaded_known);
    EXPECT_TRUE(b->loaded.empty());
  }
}

TEST(Identify, LlamaCppIsNotTakenForOllamaThoughItAnswersApiTags) {
  auto b = identify_fake(llamacpp_single(), "http://127.0.0.1:8080");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->kind, BackendKind::kLlamaCpp);
  EXPECT_EQ(b->kind_name, "llama.cpp server");
  EXPECT_EQ(b->provider, "llamacpp");
  EXPECT_EQ(b->provider_url, "http://127.0.0.1:8080");
  EXPECT_EQ(b->models, (Strings{"qwen2.5-7b-instruct"}));
  EXPECT_TRUE(b->loaded_known);
  EXPECT_EQ(b->loaded, (Strings{"qwen2.5-7b-instruct"}));
  EXPECT_EQ(b->context_length, 8192);  // the runtime n_ctx, not n_ctx_train
}

TEST(Identify, LlamaCppRouterModeLoadsOnlyWhatItsStatusSays) {
  auto b = identify_fake(llamacpp_router());
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->kind, BackendKind::kLlamaCpp);
  EXPECT_EQ(b->models, (Strings{"ggml-org/gemma-3-4b-it-GGUF:Q4_K_M", "unsloth/Qwen3-8B-GGUF:Q4_K_M", "qwen3-0.6b"}));
  EXPECT_EQ(b->loaded, (Strings{"ggml-org/gemma-3-4b-it-GGUF:Q4_K_M"}));
  EXPECT_TRUE(b->loaded_known);
  EXPECT_EQ(b->context_length, 0);  // the router's n_ctx 0 is "unknown", per model it differs
}

// An older server: n_ctx at the top of /props, no /v1/models; /props still names the model.
TEST(Identify, LlamaCppWithoutAModelListNamesItsModelFromProps) {
  FakeBackend backend = llamacpp_single();
  backend.routes.erase("/v1/models");
  backend.routes["/props"] = ok(R"({"default_generation_settings":{"temperature":0.8},"n_ctx":4096,
    "total_slots":1,"model_path":"/models/mistral-7b-instruct-v0.2.Q4_K_M.gguf"})");
  auto b = identify_fake(backend);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->kind, BackendKind::kLlamaCpp);
  EXPECT_EQ(b->context_length, 4096);
  EXPECT_EQ(b->models, (Strings{"/models/mistral-7b-instruct-v0.2.Q4_K_M.gguf"}));
  EXPECT_EQ(b->loaded, b->models);
}

TEST(Identify, LmStudioListsItsChatModelsAndWhichAreLoaded) {
  auto b = identify_fake(lmstudio(), "http://127.0.0.1:1234");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->kind, BackendKind::kLmStudio);
  EXPECT_EQ(b->kind_name, "LM Studio");
  EXPECT_EQ(b->provider, "openai");
  EXPECT_EQ(b->provider_url, "http://127.0.0.1:1234/v1");
  EXPECT_EQ(b->models, (Strings{"qwen2.5-7b-instruct", "qwen2-vl-7b-instruct"}));  // not the embedding model
  EXPECT_TRUE(b->loaded_known);
  EXPECT_EQ(b->loaded, (Strings{"qwen2.5-7b-instruct"}));
  EXPECT_EQ(b->context_length, 4096);  // what it was loaded with, not its 32768 maximum
}

TEST(Identify, LmStudioWithNothingLoadedGivesTheModelsMaximum) {
  FakeBackend backend = lmstudio();
  backend.routes["/api/v0/models"] = ok(R"({"object":"list","data":[
    {"id":"meta-llama-3.1-8b-instruct","object":"model","type":"llm","publisher":"lmstudio-community",
     "arch":"llama","compatibility_type":"gguf","quantization":"Q4_K_M","state":"not-loaded",
     "max_context_length":131072}]})");
  auto b = identify_fake(backend);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->kind, BackendKind::kLmStudio);
  EXPECT_TRUE(b->loaded.empty());
  EXPECT_TRUE(b->loaded_known);
  EXPECT_EQ(b->context_length, 131072);
}

TEST(Identify, Vllm) {
  auto b = identify_fake(vllm(), "http://127.0.0.1:8000");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->kind, BackendKind::kVllm);
  EXPECT_EQ(b->kind_name, "vLLM");
  EXPECT_EQ(b->provider, "openai");
  EXPECT_EQ(b->provider_url, "http://127.0.0.1:8000/v1");
  EXPECT_EQ(b->models, (Strings{"meta-llama/Llama-3.1-8B-Instruct", "sql-lora"}));
  EXPECT_EQ(b->loaded, b->models);
  EXPECT_TRUE(b->loaded_known);
  EXPECT_EQ(b->context_length, 131072);
}

// /version alone is not vLLM: its model list must say so (SGLang shares port 8000 and /version).
TEST(Identify, AnotherOpenAiCompatibleServerIsGeneric) {
  auto b = identify_fake(sglang(), "http://127.0.0.1:30000/");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->kind, BackendKind::kOpenAiCompatible);
  EXPECT_EQ(b->kind_name, "OpenAI-compatible server");
  EXPECT_EQ(b->url, "http://127.0.0.1:30000");  // no trailing slash
  EXPECT_EQ(b->provider, "openai");
  EXPECT_EQ(b->provider_url, "http://127.0.0.1:30000/v1");
  EXPECT_EQ(b->models, (Strings{"Qwen/Qwen2.5-7B-Instruct"}));
  EXPECT_FALSE(b->loaded_known);
  EXPECT_TRUE(b->loaded.empty());
  EXPECT_EQ(b->context_length, 32768);
}

// --- what is not a backend ---------------------------------------------------------------------

TEST(Identify, APortAnsweringHtmlEverywhereIsNoBackend) {
  EXPECT_FALSE(identify_fake(answering_everywhere(ok("<!doctype html><html><body>Grafana</body></html>"))));
}

TEST(Identify, APortAnswering404EverywhereIsNoBackend) {
  EXPECT_FALSE(identify_fake(answering_everywhere({404, R"({"error":"not found"})"})));
}

TEST(Identify, JsonOfAnotherShapeIsNoBackend) {
  for (const char* body : {R"({"status":"ok","uptime":1234})", R"({"version":"2.4.1"})", R"([1,2,3])",
                           R"({"object":"list","data":[1,2,3]})", R"({"object":"error","data":[]})",
                           R"({"models":"all of them","data":{"id":"x"},"default_generation_settings":3})",
                           "null", "42", R"("version")"})
    EXPECT_FALSE(identify_fake(answering_everywhere(ok(body)))) << body;
}

TEST(Identify, MalformedJsonIsNoBackend) {
  for (const char* body : {R"({"version":"0.12.6")", R"({"models":[{"name":"llama3.2:latest"})", "{", "",
                           "\xff\xfe{\"version\":1}"})
    EXPECT_FALSE(identify_fake(answering_everywhere(ok(body)))) << body;
}

// Entries of the wrong type are skipped, the rest still read.
TEST(Identify, WrongTypesInsideARealShapeAreSkipped) {
  FakeBackend backend = ollama(R"({"models":[{"name":7,"context_length":"big"},null,"x",
    {"model":"qwen2.5-coder:7b","context_length":-5}]})");
  backend.routes["/api/tags"] = ok(R"({"models":[{"name":42},null,"llama3.2",{"name":"llama3.2:latest"}]})");
  auto b = identify_fake(backend);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->kind, BackendKind::kOllama);
  EXPECT_EQ(b->models, (Strings{"llama3.2:latest", "qwen2.5-coder:7b"}));  // a loaded one is servable
  EXPECT_EQ(b->loaded, (Strings{"qwen2.5-coder:7b"}));
  EXPECT_EQ(b->context_length, 0);
}

TEST(Identify, AnOllamaTagsOfTheWrongTypeFallsThroughToTheNextCheck) {
  FakeBackend backend = ollama(kOllamaOneLoaded);
  backend.routes["/api/tags"] = ok(R"({"models":"llama3.2"})");
  auto b = identify_fake(backend);  // its /v1/models still make it an OpenAI-compatible server
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->kind, BackendKind::kOpenAiCompatible);
}

TEST(Identify, NothingListeningCostsOneRequest) {
  FakeNetwork net;
  EXPECT_FALSE(identify("http://127.0.0.1:8080", net.fetch()));
  EXPECT_EQ(net.asked, (Strings{"http://127.0.0.1:8080/api/version"}));
}

TEST(Identify, AFetchThatThrowsIsNoAnswer) {
  Fetch throwing = [](const std::string&) -> ProbeResponse { throw std::runtime_error("socket exploded"); };
  EXPECT_FALSE(identify("http://127.0.0.1:8080", throwing));
}

TEST(Identify, EachPathIsAskedOnceAtTheBaseUrl) {
  FakeNetwork net;
  net.add("http://127.0.0.1:30000", sglang());
  ASSERT_TRUE(identify("http://127.0.0.1:30000//", net.fetch()));
  EXPECT_EQ(net.asked, (Strings{"http://127.0.0.1:30000/api/version", "http://127.0.0.1:30000/props",
                                "http://127.0.0.1:30000/api/v0/models", "http://127.0.0.1:30000/version",
                                "http://127.0.0.1:30000/v1/models"}));
}

// --- detect ------------------------------------------------------------------------------------

TEST(Detect, DefaultUrlsAreTheUsualLoopbackPorts) {
  EXPECT_EQ(default_probe_urls(), (Strings{"http://127.0.0.1:8080", "http://127.0.0.1:11434",
                                           "http://127.0.0.1:1234", "http://127.0.0.1:8000"}));
}

TEST(Detect, FindsWhatRunsInTheGivenOrderWhateverThePort) {
  FakeNetwork net;
  net.add("http://127.0.0.1:11434", ollama(kOllamaOneLoaded));
  net.add("http://127.0.0.1:8080", vllm());  // vLLM on llama.cpp's usual port is still vLLM
  net.add("http://127.0.0.1:1234", answering_everywhere(ok("<html></html>")));
  auto found = detect(default_probe_urls(), net.fetch());
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].kind, BackendKind::kVllm);
  EXPECT_EQ(found[0].url, "http://127.0.0.1:8080");
  EXPECT_EQ(found[1].kind, BackendKind::kOllama);
  EXPECT_EQ(found[1].url, "http://127.0.0.1:11434");
}

// --- http_get against real sockets ---------------------------------------------------------------

// Accepts one connection on a loopback port, reads the request head, then sends `response` (or,
// when it is empty, stays silent until the client gives up).
class OneShotServer {
 public:
  explicit OneShotServer(std::string response) {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(listener_, 1);
    socklen_t len = sizeof addr;
    getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, response = std::move(response)] { serve(response); });
  }
  ~OneShotServer() {
    shutdown(listener_, SHUT_RDWR);  // wakes accept() if no one came
    close(listener_);
    thread_.join();
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  std::string request() {
    std::lock_guard lock(mutex_);
    return request_;
  }

 private:
  void serve(const std::string& response) {
    int conn = accept(listener_, nullptr, nullptr);
    if (conn < 0) return;
    std::string head;
    char buf[4096];
    while (head.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = recv(conn, buf, sizeof buf, 0);
      if (n <= 0) break;
      head.append(buf, static_cast<size_t>(n));
    }
    {
      std::lock_guard lock(mutex_);
      request_ = head;
    }
    if (response.empty()) {
      while (recv(conn, buf, sizeof buf, 0) > 0) {
      }
    } else {
      for (size_t sent = 0; sent < response.size();) {
        ssize_t n = send(conn, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<size_t>(n);
      }
    }
    close(conn);
  }

  int listener_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::string request_;
};

std::string http_response(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

// The backend is local: a proxy from the environment must not be used even when one is set.
TEST(HttpGet, GetsStatusAndBodyDirectlyDespiteAProxyInTheEnvironment) {
  OneShotServer server(http_response(200, R"({"version":"0.12.6"})"));
  setenv("http_proxy", "http://127.0.0.1:1", 1);
  auto response = http_get(server.url("/api/version"));
  unsetenv("http_proxy");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, R"({"version":"0.12.6"})");
  EXPECT_EQ(server.request().rfind("GET /api/version HTTP/1.1\r\n", 0), 0u) << server.request();
}

TEST(HttpGet, KeepsTheStatusOfAnError) {
  OneShotServer server(http_response(404, "404 page not found"));
  auto response = http_get(server.url("/props"));
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.body, "404 page not found");
}

TEST(HttpGet, ARefusedConnectionIsNoAnswer) {
  int port = 0;
  {
    OneShotServer closed_soon("x");
    port = std::stoi(closed_soon.url("").substr(std::string("http://127.0.0.1:").size()));
  }
  EXPECT_EQ(http_get("http://127.0.0.1:" + std::to_string(port) + "/api/version").status, 0);
}

TEST(HttpGet, ABodyOverTheCapIsNoAnswer) {
  OneShotServer server(http_response(200, std::string(5u << 20, 'x')));
  auto response = http_get(server.url("/v1/models"));
  EXPECT_EQ(response.status, 0);
  EXPECT_TRUE(response.body.empty());
}

TEST(HttpGet, ASilentServerIsNoAnswerWithinTheTotalTimeout) {
  OneShotServer server("");
  auto start = std::chrono::steady_clock::now();
  auto response = http_get(server.url("/api/version"));
  EXPECT_EQ(response.status, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(2900));
}

}  // namespace
}  // namespace plexus::node
