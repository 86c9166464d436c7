// Cost of plugin hooks per call, in-process (no HTTP): an empty Lua on_chunk on a typical chunk,
// a Lua routing policy over 50 candidates, and a native no-op for comparison.
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
  std::printf("| empty Lua `on_chunk` (decode a 200-byte chunk into a table, call, ctx) | %.2f |\n", chunk_us);
  for (int n : {50, 1000}) {
    RouteCtx route_ctx = candidates(n);
    int calls = n == 50 ? 50000 : 5000;
    double empty_us = us_per_call(calls, [&] { (void)empty_route.plugin->on_route(route_ctx); });
    double policy_us = us_per_call(calls, [&] { (void)policy.plugin->on_route(route_ctx); });
    std::printf("| empty Lua `on_route` over %d candidates (a view: nothing is copied) | %.2f |\n", n, empty_us);
    std::printf("| Lua routing policy over %d candidates (`examples/policies/cheapest_within_p95.lua`, reads 4-5 fields of each) | %.2f |\n", n, policy_us);
  }
  return 0;
}
