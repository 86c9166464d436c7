// plexus-node: joins a Plexus router from behind NAT and serves its orders with a local backend.
#include <signal.h>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <cstdio>

#include "agent.hpp"
#include "agent_options.hpp"
#include "backend_probe.hpp"

namespace {

using namespace plexus::node;

// Which backend to serve and what it offers; nullopt (after saying why) when there is none.
std::optional<AgentSetup> find_backend(const AgentOptions& o) {
  AgentSetup setup;
  setup.options = o;
  if (o.backend == "demo") {
    setup.provider = o.provider.empty() ? "demo" : o.provider;
    setup.backend_kind = "demo";
    for (const auto& id : o.models.empty() ? std::vector<std::string>{"demo"} : o.models) setup.models.push_back({id, true, 8192});
    return setup;
  }
  std::optional<DetectedBackend> found;
  if (!o.backend.empty()) {
    std::string url = o.backend;
    while (!url.empty() && url.back() == '/') url.pop_back();
    found = identify(url, http_get);
    if (!found) {
      if (o.provider.empty() || o.models.empty()) {
        spdlog::error("{} does not answer like llama.cpp, Ollama, LM Studio, vLLM or an OpenAI-compatible server; "
                      "name its adapter and models with --provider and --models to serve it anyway", url);
        return std::nullopt;
      }
      setup.provider = o.provider;
      setup.provider_url = url;
      setup.backend_kind = o.provider;
      for (const auto& id : o.models) setup.models.push_back({id, false, 0});
      return setup;
    }
  } else {
    auto urls = o.probe_urls.empty() ? default_probe_urls() : o.probe_urls;
    auto all = detect(urls, http_get);
    for (const auto& b : all)
      spdlog::info("found {} at {} ({} model(s), {} loaded)", b.kind_name, b.url, b.models.size(),
                   b.loaded_known ? std::to_string(b.loaded.size()) : std::string("?"));
    if (all.empty()) {
      std::string tried;
      for (const auto& u : urls) tried += (tried.empty() ? "" : ", ") + u;
      spdlog::error("no LLM backend found (looked for llama.cpp, Ollama, LM Studio, vLLM and OpenAI-compatible servers at {}); start one, or "
                    "give --backend URL, or --backend demo", tried);
      return std::nullopt;
    }
    found = all.front();
  }
  setup.provider = o.provider.empty() ? found->provider : o.provider;
  setup.provider_url = found->provider_url;
  setup.backend_kind = found->slug;  // what the router is told serves the orders
  for (const auto& id : found->models) {
    if (!o.models.empty() && std::find(o.models.begin(), o.models.end(), id) == o.models.end()) continue;
    bool hot = !found->loaded_known || std::find(found->loaded.begin(), found->loaded.end(), id) != found->loaded.end();
    setup.models.push_back({id, hot, found->context_length});
  }
  for (const auto& wanted : o.models)
    if (std::find(found->models.begin(), found->models.end(), wanted) == found->models.end())
      spdlog::warn("--models: {} does not offer '{}'; it is not served", found->kind_name, wanted);
  if (setup.models.empty()) {
    spdlog::error("{} at {} offers no model to serve{}", found->kind_name, found->url,
                  o.models.empty() ? " (pull or load one first)" : " among --models");
    return std::nullopt;
  }
  return setup;
}

}  // namespace

int main(int argc, char** argv) {
  auto parsed = parse_options(argc, argv);
  if (parsed.exit) {
    std::fputs(parsed.message.c_str(), parsed.exit_code == 0 ? stdout : stderr);
    return parsed.exit_code;
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before any thread starts: only main takes them
  signal(SIGPIPE, SIG_IGN);

  spdlog::set_default_logger(spdlog::stderr_color_mt("plexus-node"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(spdlog::level::from_str(parsed.options.log_level));

  auto setup = find_backend(parsed.options);
  if (!setup) return 1;
  std::string models;
  for (const auto& m : setup->models) models += (models.empty() ? "" : ", ") + m.id + (m.hot ? " (hot)" : "");
  spdlog::info("serving {} with the {} adapter{}: {}", setup->backend_kind, setup->provider,
               setup->provider_url.empty() ? "" : " at " + setup->provider_url, models);

  if (parsed.options.detect_only) {
    nlohmann::json served = nlohmann::json::array();
    for (const auto& m : setup->models)
      served.push_back({{"id", m.id}, {"hot", m.hot}, {"context_length", m.context_length}});
    std::printf("%s\n", nlohmann::json{{"backend", setup->backend_kind}, {"provider", setup->provider},
                                       {"url", setup->provider_url}, {"models", served}}.dump().c_str());
    return 0;
  }
  // One agent per router it is given (--router A,B): each its own stream and loop, the backend
  // shared, its concurrency split between them so the backend never sees more than asked.
  // Routers the joined ones tell of (a cluster on one Redis) are joined too, from this thread:
  // agents report them through `learned`.
  std::vector<std::unique_ptr<Agent>> agents;
  auto routers = split_list(setup->options.router);
  int share = std::max(1, setup->options.max_concurrency / static_cast<int>(std::max<std::size_t>(routers.size(), 1)));
  std::mutex learned_mu;
  std::vector<std::string> learned;
  setup->on_routers = [&](const std::vector<std::string>& told) {
    std::lock_guard lock(learned_mu);
    learned.insert(learned.end(), told.begin(), told.end());
  };
  auto join = [&](const std::string& address, int concurrency) {
    AgentSetup one = *setup;
    one.options.router = address;
    one.options.max_concurrency = concurrency;
    agents.push_back(std::make_unique<Agent>(std::move(one)));
  };
  try {
    for (const auto& address : routers) join(address, routers.size() > 1 ? share : setup->options.max_concurrency);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  for (auto& a : agents) a->start();
  auto join_learned = [&] {
    std::vector<std::string> told;
    {
      std::lock_guard lock(learned_mu);
      told.swap(learned);
    }
    for (const auto& address : told) {
      if (std::find(routers.begin(), routers.end(), address) != routers.end()) continue;
      routers.push_back(address);
      spdlog::info("the router told of another router of its network at {}: joining it too", address);
      try {
        join(address, share);
        agents.back()->start();
      } catch (const std::exception& e) {
        spdlog::warn("cannot join {}: {}", address, e.what());
      }
    }
  };
  auto all_finished = [&] {
    return std::all_of(agents.begin(), agents.end(), [](const auto& a) { return a->finished(); });
  };
  const timespec tick{0, 200 * 1000 * 1000};
  bool asked = false;
  while (!all_finished()) {
    int sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig < 0) {
      if (!asked) join_learned();
      continue;
    }
    if (asked) {
      spdlog::warn("second signal: stopping now");
      break;
    }
    asked = true;
    spdlog::info("signal {}: draining", sig);
    for (auto& a : agents) a->drain();
  }
  for (auto& a : agents) a->stop();
  return 0;
}
