#pragma once
// Deployments on the node: the router says which models the node's groups should offer; the node
// fetches what it lacks when its backend can (Ollama's /api/pull, streamed progress), and reports
// where each stands with its heartbeats. A backend that cannot fetch (llama.cpp, vLLM, LM Studio)
// says so and keeps serving what it has.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "plexus/http_client.hpp"
#include "plexus/node/v1/node.pb.h"

namespace plexus::node {

namespace pb = ::plexus::node::v1;

class Deployer {
 public:
  // `ollama_url`: the backend's base URL when it is Ollama (it can fetch), else empty.
  // `on_loaded` runs (loop thread) when a fetched model is ready to serve.
  Deployer(HttpClient& http, Timers& timers, std::string ollama_url, std::string backend_kind,
           std::function<void(const std::string& model)> on_loaded);
  ~Deployer();

  // Loop thread: a Deployments message; `served` is what the node serves now.
  void apply(const pb::Deployments& deployments, const std::vector<std::string>& served);
  // Loop thread: every deployment's state, for the next heartbeat.
  void report(google::protobuf::RepeatedPtrField<pb::DeploymentState>* out) const;

 private:
  struct Entry {
    std::string model;
    pb::DeploymentState::State state = pb::DeploymentState::MISSING;
    double progress = 0;
    std::string detail;
  };
  class Pull;
  void pull_next();
  void finished(Entry& entry, bool ok, const std::string& detail);

  HttpClient& http_;
  Timers& timers_;
  std::string ollama_url_;
  std::string backend_kind_;
  std::function<void(const std::string&)> on_loaded_;
  std::vector<Entry> entries_;
  TransferId transfer_ = 0;  // the pull in progress (one at a time: they share one disk and link)
};

}  // namespace plexus::node
