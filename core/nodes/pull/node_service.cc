#include "nodes/pull/node_service.hpp"

#include <algorithm>

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <stdexcept>
#include <thread>

#include "auth/key_store.hpp"
#include "auth/sha256.hpp"
#include "nodes/pull/node_session.hpp"
#include "util/read_file.hpp"

namespace plexus {
namespace {

}  // namespace

struct NodeService::Impl final : public pb::NodeLink::CallbackService {
  Impl(const Config& config, NodeRegistry& registry, LoopGroup& loops)
      : config(config),
        env{config.nodes, config.deployments, config.routing.breaker, config.server.max_stream_duration, registry, loops,
            [this](std::shared_ptr<Node> node, std::shared_ptr<NodeSession> s) { return joined(std::move(node), std::move(s)); },
            [this](const NodeSession* s) { ended(s); }, draining} {}

  grpc::ServerBidiReactor<pb::NodeMessage, pb::RouterMessage>* Connect(grpc::CallbackServerContext* context) override {
    auto session = std::make_shared<NodeSession>(env, authenticate(*context));
    session->begin();
    return session.get();
  }

  // The node token from "authorization: Bearer ...", compared in constant time against every
  // configured token's hash. API keys are not node tokens (the config refuses one that is both).
  const NodeTokenConfig* authenticate(const grpc::CallbackServerContext& context) const {
    const auto& metadata = context.client_metadata();
    auto it = metadata.find("authorization");
    if (it == metadata.end()) return nullptr;
    std::string_view presented = bearer_token(std::string_view(it->second.data(), it->second.size()));
    if (presented.empty()) return nullptr;
    Sha256 digest = sha256(presented);
    const NodeTokenConfig* match = nullptr;
    for (const auto& token : *tokens.load())
      if (same_digest(digest, token.token_hash) && !match) match = &token;
    return match;
  }

  std::shared_ptr<NodeSession> joined(std::shared_ptr<Node> node, std::shared_ptr<NodeSession> session) {
    std::lock_guard lock(mu);
    auto& slot = sessions[node->id];
    auto previous = slot.lock();
    slot = session;
    env.registry.add(std::move(node));
    return previous == session ? nullptr : previous;
  }

  void ended(const NodeSession* session) {
    std::lock_guard lock(mu);
    for (auto it = sessions.begin(); it != sessions.end(); ++it) {
      auto held = it->second.lock();
      if (!held || held.get() == session) {
        sessions.erase(it);
        return;
      }
    }
  }

  std::vector<std::shared_ptr<NodeSession>> live_sessions() {
    std::lock_guard lock(mu);
    std::vector<std::shared_ptr<NodeSession>> out;
    for (auto& [id, weak] : sessions)
      if (auto s = weak.lock()) out.push_back(std::move(s));
    return out;
  }

  // Liveness is judged from the router's side, over the node's own connection: a node silent
  // for liveness_timeout (no heartbeat, no chunk, nothing) leaves rotation and its stream is cut,
  // whatever its TCP connection still pretends.
  void watch_liveness() {
    auto period = std::max(std::chrono::milliseconds(50), config.nodes.heartbeat_interval / 4);
    std::unique_lock lock(watch_mu);
    while (!watch_cv.wait_for(lock, period, [&] { return stopping; })) {
      lock.unlock();
      for (auto& session : live_sessions()) {
        auto silent = session->silent_for_ms();
        if (silent > config.nodes.liveness_timeout.count())
          session->close(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                      "silent for " + std::to_string(silent) + " ms (liveness timeout " +
                                          std::to_string(config.nodes.liveness_timeout.count()) + " ms)"));
      }
      lock.lock();
    }
  }

  const Config& config;
  std::atomic<const std::vector<NodeTokenConfig>*> tokens{&config.node_tokens};
  std::atomic<bool> draining{false};
  SessionEnv env;
  std::mutex mu;
  std::unordered_map<std::string, std::weak_ptr<NodeSession>> sessions;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::thread watcher;
  std::mutex watch_mu;
  std::condition_variable watch_cv;
  bool stopping = false;
};

NodeService::NodeService(const Config& config, NodeRegistry& registry, LoopGroup& loops)
    : impl_(std::make_unique<Impl>(config, registry, loops)) {}

NodeService::~NodeService() { stop(); }

void NodeService::set_peer_routers(std::function<std::vector<std::string>()> peers) { impl_->env.peer_routers = std::move(peers); }

void NodeService::announce_routers(const std::vector<std::string>& peers) {
  for (auto& session : impl_->live_sessions()) session->tell_routers(peers);
}

void NodeService::set_tokens(const std::vector<NodeTokenConfig>& tokens) {
  impl_->tokens.store(&tokens);
  for (auto& session : impl_->live_sessions()) {
    const NodeTokenConfig* held = session->token();
    bool still = held && std::any_of(tokens.begin(), tokens.end(), [&](const NodeTokenConfig& t) {
      return t.id == held->id && same_digest(t.token_hash, held->token_hash) && t.groups == held->groups;
    });
    if (!still)
      session->close(grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                  "the node's token was removed from the router's config, or its groups changed (join again)"));
  }
}

void NodeService::start() {
  const auto& nc = impl_->config.nodes;
  std::string address = (nc.host.find(':') != std::string::npos ? "[" + nc.host + "]" : nc.host) + ":" +
                        std::to_string(nc.port);
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (nc.tls_cert.empty()) {
    credentials = grpc::InsecureServerCredentials();  // loopback only (the config refuses otherwise)
  } else {
    grpc::SslServerCredentialsOptions tls;
    tls.pem_key_cert_pairs.push_back({read_file(nc.tls_key), read_file(nc.tls_cert)});
    credentials = grpc::SslServerCredentials(tls);
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, credentials, &impl_->port);
  builder.RegisterService(impl_.get());
  builder.SetMaxReceiveMessageSize(static_cast<int>(nc.max_message_bytes));
  // gRPC never pings by default, and punishes pings it did not allow: set both on purpose
  // (docs/node-protocol.md, "Liveness"). The router pings each node's connection every half
  // liveness timeout and drops it when a ping goes unanswered for as long; nodes may ping every
  // second, with or without calls, without being sent away.
  auto half = static_cast<int>(nc.liveness_timeout.count() / 2);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, half);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, half);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  impl_->server = builder.BuildAndStart();
  if (!impl_->server || impl_->port == 0)
    throw std::runtime_error("cannot listen for nodes on " + address + " (nodes.listen): the address is in use or not local");
  impl_->watcher = std::thread([this] { impl_->watch_liveness(); });
  spdlog::info("listening for nodes on {}:{}{}", nc.host, impl_->port, nc.tls_cert.empty() ? "" : " (TLS)");
}

std::uint16_t NodeService::port() const { return static_cast<std::uint16_t>(impl_->port); }

void NodeService::drain() {
  impl_->draining.store(true);
  for (auto& session : impl_->live_sessions()) session->drain("the router is shutting down");
}

void NodeService::stop() {
  if (!impl_->server) return;
  {
    std::lock_guard lock(impl_->watch_mu);
    impl_->stopping = true;
  }
  impl_->watch_cv.notify_all();
  if (impl_->watcher.joinable()) impl_->watcher.join();
  for (auto& session : impl_->live_sessions())
    session->close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the router is shutting down"));
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  impl_->server->Wait();
  impl_->server.reset();
}

}  // namespace plexus
