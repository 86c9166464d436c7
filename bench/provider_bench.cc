// Translation cost per chunk of each adapter: the real adapter library, loaded by name, fed a
// recorded 2000-chunk stream through a fake HttpClient (no network), in one buffer and in 64-byte
// pieces; a sink counts what comes out.
//   provider_bench BUILD_DIR/providers
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "gateway/provider_registry.hpp"

namespace {

using namespace plexus;
using Clock = std::chrono::steady_clock;

class FakeHttp final : public HttpClient, public Timers {
 public:
  std::shared_ptr<HttpResponseHandler> handler;
  TransferId start(HttpRequest, std::shared_ptr<HttpResponseHandler> h) override {
    handler = std::move(h);
    return 1;
  }
  void abort(TransferId) override {}
  void pause(TransferId) override {}
  void resume(TransferId) override {}
  TimerId after(std::chrono::milliseconds, std::function<void()>) override { return 0; }
  void cancel(TimerId) override {}
};

class CountingSink final : public ResponseSink {
 public:
  std::size_t chunks = 0, bytes = 0;
  bool finished = false;
  void on_chunk(std::string_view c) override {
    ++chunks;
    bytes += c.size();
  }
  void on_body(std::string_view) override {}
  void on_finish(const Outcome& o) override { finished = !o.error; }
};

constexpr int kChunks = 2000;

std::string openai_stream(bool timings) {
  std::string s;
  for (int i = 0; i < kChunks; ++i)
    s += R"(data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"content":" token"},"logprobs":null,"finish_reason":null}]})" "\n\n";
  s += std::string(R"(data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}])") +
       (timings ? R"(,"timings":{"prompt_n":9,"predicted_n":2000,"predicted_per_second":50.0}})" : "}") + "\n\n";
  if (!timings) s += R"(data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2000,"total_tokens":2009}})" "\n\n";
  return s + "data: [DONE]\n\n";
}

std::string ollama_stream() {
  std::string s;
  for (int i = 0; i < kChunks; ++i)
    s += R"({"model":"llama3.2","created_at":"2026-11-23T10:00:00.000000000Z","message":{"role":"assistant","content":" token"},"done":false})" "\n";
  return s + R"({"model":"llama3.2","created_at":"2026-11-23T10:00:00.000000000Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":9,"eval_count":2000})" "\n";
}

std::string anthropic_stream() {
  std::string s = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"c\",\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n"
                  "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n";
  for (int i = 0; i < kChunks; ++i)
    s += "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" token\"}}\n\n";
  return s + "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
             "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2000}}\n\n"
             "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
}

double run(ProviderRegistry& registry, const char* provider, const std::string& stream, std::size_t piece, int rounds) {
  std::shared_ptr<Provider> p;  // declared first, destroyed last: its library holds the handler's code
  FakeHttp http;
  ProviderHost host{http, http};
  UpstreamSpec spec;
  spec.name = "bench";
  spec.url = "http://127.0.0.1:9";
  spec.api_key = "k";
  p = registry.create(provider, spec, host);
  if (!p) {
    std::fprintf(stderr, "%s: no such adapter in the providers folder\n", provider);
    std::exit(1);
  }
  ChatRequest req;
  req.request_id = "req_bench";
  req.model = "m";
  req.body = R"({"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]})";
  req.stream = true;
  std::size_t chunks = 0;
  auto start = Clock::now();
  for (int r = 0; r < rounds; ++r) {
    CountingSink sink;
    auto call = p->start(req, sink);
    http.handler->on_status(200, {});
    for (std::size_t at = 0; at < stream.size(); at += piece) http.handler->on_data(std::string_view(stream).substr(at, piece));
    http.handler->on_end(TransferError::kNone, "");
    if (!sink.finished) std::fprintf(stderr, "%s: the stream did not finish cleanly\n", provider);
    chunks += sink.chunks;
  }
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count() / static_cast<double>(chunks);
}

}  // namespace

int main(int argc, char** argv) {
  ProviderRegistry registry(argc > 1 ? argv[1] : "build/providers");
  struct Case {
    const char* provider;
    std::string stream;
  } cases[] = {{"openai", openai_stream(false)}, {"llamacpp", openai_stream(true)},
               {"ollama", ollama_stream()}, {"anthropic", anthropic_stream()}};
  std::printf("| adapter | µs per chunk (stream in one buffer) | µs per chunk (64-byte reads) |\n|---|---:|---:|\n");
  for (auto& c : cases)
    std::printf("| %s | %.2f | %.2f |\n", c.provider, run(registry, c.provider, c.stream, c.stream.size(), 20),
                run(registry, c.provider, c.stream, 64, 20));
  return 0;
}
