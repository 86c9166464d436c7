// Cost of plugin hooks per call, in-process (no HTTP): an empty Lua on_chunk on a typical chunk,
// a Lua routing policy over 50 and 1,000 candidates, and the three example plugins bench/run.sh
// puts in front of whole completions, hook by hook, on that benchmark's request and answer.
//   plugin_bench REPO_ROOT
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "plugins/loaded_plugin.hpp"

namespace {

using Clock = std::chrono::steady_clock;

template <class Base>
class Ctx : public Base {
 public:
  std::string_view request_id() const override { return "req_bench"; }
  std::string_view key_id() const override { return "bench"; }
  std::string_view group() const override { return "public"; }
  Clock::time_point deadline() const override { return Clock::now(); }
  std::shared_ptr<void>& state() override { return state_; }
  std::shared_ptr<void> state_;
};

class ChunkCtx final : public Ctx<plexus::ChunkContext> {
 public:
  std::string_view chunk() const override { return chunk_; }
  void set_chunk(std::string) override {}
  void insert(std::string) override {}
  bool whole() const override { return false; }
  bool end_of_stream() const override { return false; }
  std::string chunk_ =
      R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"llama-3.2-3b","choices":[{"index":0,"delta":{"content":" token"},"logprobs":null,"finish_reason":null}]})";
};

// bench/run.sh's request body and the mock upstream's whole answer.
class RequestCtx final : public Ctx<plexus::RequestContext> {
 public:
  std::string request_json() const override { return body_; }
  std::string body_ =
      R"({"model":"mock","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Benchmark me, please."}],"temperature":0.2,"max_tokens":64})";
  void set_request_json(std::string) override {}
  void set_upstream_header(std::string, std::string) override {}
  std::optional<std::size_t> request_entry() const override { return std::nullopt; }
  void set_response_header(std::string, std::string) override {}
  std::shared_ptr<plexus::PendingRequest> pause() override { return nullptr; }
  void respond(std::string) override {}
  void reject(plexus::Error) override {}
};

class WholeAnswerCtx final : public Ctx<plexus::ChunkContext> {
 public:
  std::string_view chunk() const override {
    return R"({"id":"chatcmpl-mock","object":"chat.completion","created":1700000000,"model":"mock","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! This is a canned answer from the benchmark mock upstream, long enough to look like a short reply."},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":24,"total_tokens":36,"cost":0.0}})";
  }
  void set_chunk(std::string) override {}
  void insert(std::string) override {}
  bool whole() const override { return true; }
  bool end_of_stream() const override { return false; }
};

class RouteCtx final : public Ctx<plexus::RouteContext> {
 public:
  std::string_view model() const override { return "llama-3.2-3b"; }
  std::vector<plexus::Candidate>& candidates() override { return cands_; }
  void pick(std::size_t) override {}
  std::vector<plexus::Candidate> cands_;
};

plexus::PluginConfig lua_config(const std::string& name, const std::string& file, const std::string& config = "{}") {
  plexus::PluginConfig c;
  c.path = "plugins[0]";
  c.name = name;
  c.type = "lua";
  c.file = file;
  c.config_json = config;
  return c;
}

template <class Fn>
double us_per_call(int n, Fn&& fn) {
  for (int i = 0; i < n / 10; ++i) fn();  // warm up
  auto start = Clock::now();
  for (int i = 0; i < n; ++i) fn();
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count() / n;
}

}  // namespace

int main(int argc, char** argv) {
  std::string root = argc > 1 ? argv[1] : ".";
  auto empty = std::filesystem::temp_directory_path() / "plexus_bench_empty_chunk.lua";
  std::ofstream(empty) << "function on_chunk(chunk, ctx) end\n";

  auto chunk_plugin = plexus::load_lua_plugin(lua_config("empty", empty.string()));
  ChunkCtx chunk_ctx;
  double chunk_us = us_per_call(200000, [&] { (void)chunk_plugin.plugin->on_chunk(chunk_ctx); });

  auto policy = plexus::load_lua_plugin(
      lua_config("cheapest", root + "/examples/policies/cheapest_within_p95.lua", R"({"max_p95_ms":900})"));
  auto empty_route_file = std::filesystem::temp_directory_path() / "plexus_bench_empty_route.lua";
  std::ofstream(empty_route_file) << "function on_route(cands, ctx) end\n";
  auto empty_route = plexus::load_lua_plugin(lua_config("empty-route", empty_route_file.string()));
  // Candidates with every field a policy reads, varied so the policy's branches all run.
  auto candidates = [](int n) {
    RouteCtx ctx;
    for (int i = 0; i < n; ++i) {
      plexus::Candidate c;
      c.node = "node-" + std::to_string(i);
      c.model = "llama-3.2-3b";
      c.latency_p50_ms = 100 + (i * 37) % 500;
      c.latency_p95_ms = 300 + (i * 53) % 1200;
      c.price_input_per_1k = 0.01 * (1 + (i * 7) % 50);
      c.price_output_per_1k = 0.02 * (1 + (i * 11) % 50);
      c.in_flight = i % 5;
      ctx.cands_.push_back(c);
    }
    return ctx;
  };

  std::printf("| hook | µs per call |\n|---|---:|\n");
  std::printf("| empty Lua `on_chunk` (parse a 200-byte chunk for Lua, call, ctx) | %.2f |\n", chunk_us);
  for (int n : {50, 1000}) {
    RouteCtx route_ctx = candidates(n);
    int calls = n == 50 ? 50000 : 5000;
    double empty_us = us_per_call(calls, [&] { (void)empty_route.plugin->on_route(route_ctx); });
    double policy_us = us_per_call(calls, [&] { (void)policy.plugin->on_route(route_ctx); });
    std::printf("| empty Lua `on_route` over %d candidates (a view: nothing is copied) | %.2f |\n", n, empty_us);
    std::printf("| Lua routing policy over %d candidates (`examples/policies/cheapest_within_p95.lua`, reads 4-5 fields of each) | %.2f |\n", n, policy_us);
  }

  // bench/run.sh's three plugins on one whole completion, one candidate (the mock upstream).
  auto sticky = plexus::load_lua_plugin(lua_config("sticky", root + "/examples/policies/sticky_user.lua"));
  auto hot = plexus::load_lua_plugin(lua_config("hot", root + "/examples/policies/hot_then_least_loaded.lua"));
  auto redact = plexus::load_lua_plugin(lua_config("redact", root + "/examples/plugins/redact.lua"));
  RouteCtx one = candidates(1);
  one.cands_[0].healthy = true;
  RequestCtx request;
  WholeAnswerCtx answer;
  // One request after another, each hook timed on its own; the plugins' per-request state lives
  // from on_request to the end of the request, as in the exchange.
  const int n = 200000;
  double hook_us[4] = {};
  for (int i = 0; i < n + n / 10; ++i) {
    bool counted = i >= n / 10;  // the first tenth warms up
    auto t0 = Clock::now();
    (void)sticky.plugin->on_request(request);
    auto t1 = Clock::now();
    one.state_ = request.state_;
    (void)sticky.plugin->on_route(one);
    auto t2 = Clock::now();
    (void)hot.plugin->on_route(one);
    auto t3 = Clock::now();
    (void)redact.plugin->on_chunk(answer);
    auto t4 = Clock::now();
    request.state_.reset();
    one.state_.reset();
    if (!counted) continue;
    hook_us[0] += std::chrono::duration<double, std::micro>(t1 - t0).count();
    hook_us[1] += std::chrono::duration<double, std::micro>(t2 - t1).count();
    hook_us[2] += std::chrono::duration<double, std::micro>(t3 - t2).count();
    hook_us[3] += std::chrono::duration<double, std::micro>(t4 - t3).count();
  }
  for (double& us : hook_us) us /= n;
  double sticky_request = hook_us[0], sticky_route = hook_us[1], hot_route = hook_us[2], redact_whole = hook_us[3];
  std::printf("| `sticky_user.lua` `on_request` (reads `user`, sets ctx.state) | %.2f |\n", sticky_request);
  std::printf("| `sticky_user.lua` `on_route`, one candidate | %.2f |\n", sticky_route);
  std::printf("| `hot_then_least_loaded.lua` `on_route`, one candidate | %.2f |\n", hot_route);
  std::printf("| `redact.lua` `on_chunk` on the whole answer (nothing to redact) | %.2f |\n", redact_whole);
  std::printf("| the three, per request | %.2f |\n", sticky_request + sticky_route + hot_route + redact_whole);

  // A long conversation (50 turns, about 25 KB) before a policy that reads one field of it.
  RequestCtx long_request;
  long_request.body_ = R"({"model":"mock","user":"u-42","messages":[)";
  for (int turn = 0; turn < 50; ++turn) {
    if (turn) long_request.body_ += ',';
    long_request.body_ += R"({"role":")" + std::string(turn % 2 ? "assistant" : "user") + R"(","content":")" +
                          std::string(480, 'a' + turn % 26) + R"("})";
  }
  long_request.body_ += "]}";
  double long_us = us_per_call(20000, [&] {
    (void)sticky.plugin->on_request(long_request);
    long_request.state_.reset();
  });
  std::printf("| `sticky_user.lua` `on_request` on a 50-turn conversation (%zu KB; reads `user`) | %.2f |\n",
              long_request.body_.size() / 1024, long_us);
  return 0;
}
