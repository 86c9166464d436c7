#pragma once
// plexus-node's agent: one event loop that keeps a stream open to the router (registering
// again after every reconnect, with backoff and jitter), heartbeats, pulls orders with credit
// and runs them through the backend's adapter. gRPC's threads only post to the loop.
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent_options.hpp"

namespace plexus::node {

struct ServedModel {
  std::string id;
  bool hot = false;
  std::int64_t context_length = 0;
};

// What main() decided to serve: the options, the adapter and where its backend is.
struct AgentSetup {
  AgentOptions options;
  std::string provider;      // adapter name
  std::string provider_url;  // the adapter's base URL ("" for demo)
  std::string backend_kind;  // told to the router ("ollama", "llamacpp", "demo"...)
  std::vector<ServedModel> models;
  // The router told of other routers of its network (Registered.routers): called on the agent's
  // loop with their node ports; main() joins the ones it has not joined yet.
  std::function<void(const std::vector<std::string>&)> on_routers = {};
};

class Agent {
 public:
  // Builds the adapter; throws std::runtime_error when it cannot.
  explicit Agent(AgentSetup setup);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  void start();  // the loop's thread and the first connection
  // Any thread (SIGTERM): no new orders, finish what is held within the drain grace (then hand
  // it back), say goodbye, stop.
  void drain();
  bool finished() const;  // drained and disconnected
  void stop();            // now, whatever is running

  struct State;

 private:
  std::unique_ptr<State> s_;
};

}  // namespace plexus::node
