#include "agent.hpp"

#include <unistd.h>

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "deployer.hpp"
#include "gateway/provider_registry.hpp"
#include "gpu_metrics.hpp"
#include "upstream/upstream_client.hpp"
#include "loop/event_loop.hpp"
#include "order_runner.hpp"
#include "router_link.hpp"
#include "util/read_file.hpp"

#ifndef PLEXUS_VERSION
#define PLEXUS_VERSION "0.0.0"
#endif

namespace plexus::node {
namespace {

std::shared_ptr<grpc::Channel> make_channel(const AgentOptions& o) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (o.tls) {
    grpc::SslCredentialsOptions tls;
    if (!o.tls_ca.empty()) tls.pem_root_certs = read_file(o.tls_ca);
    credentials = grpc::SslCredentials(tls);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  // Our own ping, so a router that vanished without a word (power, network) is noticed within
  // seconds; the router allows pings this often (docs/node-protocol.md, "Liveness").
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 30000);
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(o.router, credentials, args);
}

// What the router is told of one model: the adapter says what its protocol can carry.
pb::Model to_model(const ServedModel& m, const AgentOptions& o, const Capabilities& caps) {
  pb::Model out;
  out.set_id(m.id);
  out.set_hot(m.hot);
  out.set_context_length(static_cast<std::uint64_t>(std::max<std::int64_t>(m.context_length, 0)));
  out.set_price_input_per_1k(o.price_in);
  out.set_price_output_per_1k(o.price_out);
  out.set_tools(caps.tools);
  out.set_vision(caps.vision);
  out.set_json_mode(caps.json_mode);
  out.set_embeddings(std::find(o.embedding_models.begin(), o.embedding_models.end(), m.id) != o.embedding_models.end());
  return out;
}

void copy_gpus(const std::vector<GpuReading>& from, google::protobuf::RepeatedPtrField<pb::Gpu>* to) {
  for (const auto& g : from) {
    auto* gpu = to->Add();
    gpu->set_index(g.index);
    gpu->set_name(g.name);
    gpu->set_utilization_percent(g.utilization_percent);
    gpu->set_memory_used_mib(g.memory_used_mib);
    gpu->set_memory_total_mib(g.memory_total_mib);
    gpu->set_temperature_c(g.temperature_c);
  }
}

}  // namespace

struct Agent::State {
  explicit State(AgentSetup s) : setup(std::move(s)), http(loop), host{http, loop} {}

  AgentSetup setup;
  EventLoop loop;
  UpstreamClient http;
  ProviderHost host;
  std::unique_ptr<ProviderRegistry> registry;
  std::shared_ptr<Provider> provider;
  std::unique_ptr<OrderRunner> runner;
  std::unique_ptr<Deployer> deployer;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::NodeLink::Stub> stub;
  std::thread loop_thread;

  // Loop thread only.
  std::shared_ptr<RouterLink> link;
  std::uint64_t link_generation = 0;
  bool registered = false;
  std::string node_id;
  std::chrono::milliseconds heartbeat{2000};
  std::uint64_t heartbeat_timer = 0;
  std::uint64_t status_timer = 0;
  std::uint64_t grace_timer = 0;
  std::chrono::milliseconds backoff{0};
  bool router_draining = false;  // the router asked: finish, disconnect, come back later
  bool draining = false;         // we were asked (SIGTERM): finish, disconnect, stop
  bool models_changed = false;   // the next heartbeat carries the model list
  std::int64_t router_credit = 0;  // orders the router may still send us (granted, not yet received)
  std::int64_t ungranted = 0;      // slots freed since the last grant
  std::mt19937 rng{std::random_device{}()};
  std::atomic<bool> done{false};
  std::atomic<int> live_links{0};  // streams whose OnDone has not run yet (they refer to us)

  // GPU readings, refreshed off the loop (nvidia-smi may take a while).
  std::thread gpu_thread;
  std::mutex gpu_mu;
  std::condition_variable gpu_cv;
  bool gpu_stop = false;
  std::vector<GpuReading> gpus;

  void connect();
  void on_message(std::uint64_t generation, pb::RouterMessage message);
  void on_closed(std::uint64_t generation, const grpc::Status& status);
  bool send(pb::NodeMessage message);
  void grant(std::int64_t slots);
  void beat();
  void order_ended();
  void give_back_slots();
  void maybe_disconnect();
  void reconnect_later(const std::string& why);
  void begin_drain();
  void show_status();
  void poll_backend();
  void read_gpus_forever();
  pb::NodeMessage registration();
};

pb::NodeMessage Agent::State::registration() {
  pb::NodeMessage hello;
  auto* r = hello.mutable_register_();
  const auto& o = setup.options;
  r->set_name(o.name);
  r->set_region(o.region);
  r->set_agent_version(std::string("plexus-node/") + PLEXUS_VERSION);
  r->set_backend(setup.backend_kind);
  r->set_max_concurrency(static_cast<std::uint32_t>(o.max_concurrency));
  r->set_live_bids(o.live_bids);
  for (const auto& m : setup.models) *r->add_models() = to_model(m, o, provider->capabilities());
  std::lock_guard lock(gpu_mu);
  copy_gpus(gpus, r->mutable_gpus());
  return hello;
}

void Agent::State::connect() {
  std::uint64_t generation = ++link_generation;
  registered = false;
  router_draining = false;
  ++live_links;
  link = std::make_shared<RouterLink>(
      [this, generation](pb::RouterMessage m) {
        loop.post([this, generation, m = std::move(m)]() mutable { on_message(generation, std::move(m)); });
      },
      [this, generation](const grpc::Status& status) {
        loop.post([this, generation, status] { on_closed(generation, status); });
        --live_links;
      });
  link->set_on_drained([this, generation] {
    loop.post([this, generation] {
      if (generation == link_generation) runner->link_drained();
    });
  });
  link->open(*stub, setup.options.token, registration());
}

// Above this much queued for the router, the orders' backend streams pause; below the low mark
// they go on. A backend faster than the stream (or a router that reads slowly) then costs the
// node at most about this much memory, however many orders run.
constexpr std::size_t kLinkHighMark = 1u << 20;
constexpr std::size_t kLinkLowMark = 256u << 10;

bool Agent::State::send(pb::NodeMessage message) {
  if (!link) return false;
  link->send(std::move(message));
  return link->queued_bytes() > kLinkHighMark;
}

void Agent::State::grant(std::int64_t slots) {
  if (slots <= 0 || !registered || draining || router_draining) return;
  router_credit += slots;
  pb::NodeMessage m;
  m.mutable_credit()->set_slots(static_cast<std::uint32_t>(slots));
  send(std::move(m));
}

void Agent::State::on_message(std::uint64_t generation, pb::RouterMessage message) {
  if (generation != link_generation) return;  // from a stream already replaced
  switch (message.kind_case()) {
    case pb::RouterMessage::kRegistered: {
      const auto& r = message.registered();
      registered = true;
      router_credit = 0;
      ungranted = 0;
      node_id = r.node_id();
      heartbeat = std::chrono::milliseconds(std::max<std::uint32_t>(r.heartbeat_interval_ms(), 100));
      backoff = std::chrono::milliseconds(0);
      spdlog::info("joined the router at {} as {} (groups {}), serving {} model(s) with {}", setup.options.router,
                   node_id, fmt::join(r.groups(), ","), setup.models.size(), setup.backend_kind);
      grant(setup.options.max_concurrency - static_cast<std::int64_t>(runner->running()));
      if (setup.on_routers && r.routers_size() > 0) setup.on_routers({r.routers().begin(), r.routers().end()});
      if (heartbeat_timer) loop.cancel(heartbeat_timer);
      heartbeat_timer = loop.after(heartbeat, [this] { beat(); });
      break;
    }
    case pb::RouterMessage::kOrder:
      --router_credit;
      runner->run(message.order());
      give_back_slots();
      break;
    case pb::RouterMessage::kBidRequest: {
      // Busier is dearer: half the advertised price when idle, all of it when every slot is taken.
      const auto& o = setup.options;
      double busy = static_cast<double>(runner->running()) / std::max(1, o.max_concurrency);
      double factor = 0.5 + 0.5 * std::min(1.0, busy);
      pb::NodeMessage bid;
      bid.mutable_bid()->set_bid_id(message.bid_request().bid_id());
      bid.mutable_bid()->set_price_input_per_1k(o.price_in * factor);
      bid.mutable_bid()->set_price_output_per_1k(o.price_out * factor);
      send(std::move(bid));
      break;
    }
    case pb::RouterMessage::kCancel:
      runner->cancel(message.cancel().order_id(), message.cancel().reason());
      break;
    case pb::RouterMessage::kRouters:  // routers that appeared since Registered
      if (setup.on_routers && message.routers().addresses_size() > 0)
        setup.on_routers({message.routers().addresses().begin(), message.routers().addresses().end()});
      break;
    case pb::RouterMessage::kFlow:
      runner->grant(message.flow().order_id(), message.flow().grant_bytes());
      break;
    case pb::RouterMessage::kDeployments: {
      std::vector<std::string> served;
      for (const auto& m : setup.models) served.push_back(m.id);
      deployer->apply(message.deployments(), served);
      break;
    }
    case pb::RouterMessage::kDrain:
      spdlog::info("the router asks to drain: {}", message.drain().reason());
      router_draining = true;
      maybe_disconnect();
      break;
    default:
      break;  // a newer router's message this agent does not know: ignored
  }
}

void Agent::State::beat() {
  heartbeat_timer = 0;
  if (!link || !registered) return;
  pb::NodeMessage m;
  auto* h = m.mutable_heartbeat();
  h->set_in_flight(static_cast<std::uint32_t>(runner->running()));
  {
    std::lock_guard lock(gpu_mu);
    copy_gpus(gpus, h->mutable_gpus());
  }
  if (models_changed) {
    for (const auto& model : setup.models) *h->add_models() = to_model(model, setup.options, provider->capabilities());
    models_changed = false;
  }
  deployer->report(h->mutable_deployments());
  send(std::move(m));
  heartbeat_timer = loop.after(heartbeat, [this] { beat(); });
}

void Agent::State::order_ended() {
  ++ungranted;
  give_back_slots();
  maybe_disconnect();
}

// Freed slots go back to the router at once while it holds half our concurrency or less, and
// are held while it holds more (checked again as each order arrives): under load that halves
// the messages per order, and the router never runs short of credit a free node could honour.
void Agent::State::give_back_slots() {
  if (ungranted == 0 || router_credit * 2 > setup.options.max_concurrency) return;
  grant(ungranted);
  ungranted = 0;
}

// Draining (ours or the router's) and nothing left to finish: close our side of the stream.
void Agent::State::maybe_disconnect() {
  if (!(draining || router_draining) || runner->running() > 0 || !link) return;
  link->close_writes();
}

void Agent::State::on_closed(std::uint64_t generation, const grpc::Status& status) {
  if (generation != link_generation) return;
  link.reset();
  registered = false;
  if (heartbeat_timer) loop.cancel(heartbeat_timer);
  heartbeat_timer = 0;
  runner->abandon_all();  // nobody is left to deliver to
  if (draining) {
    spdlog::info("drained; disconnected from the router");
    done = true;
    loop.stop();
    return;
  }
  std::string why = status.ok() ? "the router ended the stream" : status.error_message();
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED || status.error_code() == grpc::StatusCode::INVALID_ARGUMENT)
    spdlog::error("the router refused this node: {}", why);
  reconnect_later(why);
}

// Backoff with jitter (1 s, x1.6 each time, at most 30 s, +-20 %), so a router that restarts is
// not met by every node at the same instant.
void Agent::State::reconnect_later(const std::string& why) {
  backoff = backoff.count() == 0 ? std::chrono::milliseconds(1000)
                                 : std::min(std::chrono::milliseconds(30000),
                                            std::chrono::milliseconds(static_cast<std::int64_t>(backoff.count() * 1.6)));
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  auto wait = std::chrono::milliseconds(static_cast<std::int64_t>(backoff.count() * jitter(rng)));
  spdlog::warn("not connected to the router ({}); trying again in {:.1f} s", why, wait.count() / 1000.0);
  loop.after(wait, [this] {
    if (!draining && !link) connect();
  });
}

void Agent::State::begin_drain() {
  if (draining) return;
  draining = true;
  if (!link) {
    done = true;
    loop.stop();
    return;
  }
  spdlog::info("draining: no new orders; {} running (grace {} s)", runner->running(), setup.options.drain_grace.count());
  pb::NodeMessage bye;
  bye.mutable_drain()->set_reason("the node is shutting down");
  send(std::move(bye));
  grace_timer = loop.after(setup.options.drain_grace, [this] {
    grace_timer = 0;
    if (runner->running() > 0) {
      spdlog::warn("drain grace over: handing {} order(s) back", runner->running());
      runner->hand_back_all();
    }
  });
  maybe_disconnect();
}

// One line, rewritten in place, when stderr is a terminal.
void Agent::State::show_status() {
  const auto& t = runner->totals();
  static std::uint64_t last_tokens = 0;
  double tps = static_cast<double>(t.completion_tokens - last_tokens);
  last_tokens = t.completion_tokens;
  std::fprintf(stderr, "\r\033[K%s | %s | %zu running | %llu served | %.0f tokens/s%s%s",
               registered ? node_id.c_str() : "connecting", setup.backend_kind.c_str(), runner->running(),
               static_cast<unsigned long long>(t.served), tps, t.last_error.empty() ? "" : " | last error: ",
               t.last_error.substr(0, 60).c_str());
  std::fflush(stderr);
  status_timer = loop.after(std::chrono::seconds(1), [this] { show_status(); });
}

// Which models the backend holds in memory changes (Ollama loads and unloads them): ask it now
// and then, and tell the router with the next heartbeat when hot flags changed.
void Agent::State::poll_backend() {
  bool asked = provider->poll_status([this](BackendStatus status) {
    if (status.ready && status.loaded_known) {
      for (auto& m : setup.models) {
        bool hot = std::find(status.loaded_models.begin(), status.loaded_models.end(), m.id) != status.loaded_models.end();
        if (hot != m.hot) {
          m.hot = hot;
          models_changed = true;
        }
      }
    }
    loop.after(std::chrono::seconds(10), [this] { poll_backend(); });
  });
  (void)asked;  // an adapter with nothing to ask (demo) is not asked again
}

void Agent::State::read_gpus_forever() {
  std::unique_lock lock(gpu_mu);
  while (!gpu_stop) {
    lock.unlock();
    auto readings = read_gpus();
    lock.lock();
    gpus = std::move(readings);
    gpu_cv.wait_for(lock, std::chrono::seconds(2), [&] { return gpu_stop; });
  }
}

Agent::Agent(AgentSetup setup) : s_(std::make_unique<State>(std::move(setup))) {
  const auto& o = s_->setup.options;
  s_->registry = std::make_unique<ProviderRegistry>(o.providers_dir.empty() ? ProviderRegistry::default_directory()
                                                                            : o.providers_dir);
  UpstreamSpec spec;
  spec.name = o.name;
  spec.url = s_->setup.provider_url;
  spec.api_key = o.api_key;
  spec.options_json = o.backend_options;
  try {
    s_->provider = s_->registry->create(s_->setup.provider, spec, s_->host);
  } catch (const std::exception& e) {
    throw std::runtime_error("--backend-options: " + std::string(e.what()));
  }
  if (!s_->provider)
    throw std::runtime_error("--provider: unknown adapter '" + s_->setup.provider + "'; available: " + s_->registry->names());
  s_->runner = std::make_unique<OrderRunner>(s_->loop, *s_->provider, [this](pb::NodeMessage m) { return s_->send(std::move(m)); });
  s_->runner->on_congested([this] {
    if (s_->link) s_->link->notify_when_drained(kLinkLowMark);
  });
  s_->runner->on_order_end([this] { s_->order_ended(); });
  s_->deployer = std::make_unique<Deployer>(
      s_->http, s_->loop, s_->setup.provider == "ollama" ? s_->setup.provider_url : "", s_->setup.backend_kind,
      [this](const std::string& model) {
        s_->setup.models.push_back({model, false, 0});
        s_->models_changed = true;
      });
  s_->channel = make_channel(o);
  s_->stub = pb::NodeLink::NewStub(s_->channel);
}

Agent::~Agent() { stop(); }

void Agent::start() {
  {
    std::lock_guard lock(s_->gpu_mu);
    s_->gpus = read_gpus();  // the first reading goes with the registration
  }
  s_->gpu_thread = std::thread([this] { s_->read_gpus_forever(); });
  s_->loop.post([this] {
    s_->connect();
    s_->loop.after(std::chrono::seconds(10), [this] { s_->poll_backend(); });
    if (isatty(STDERR_FILENO)) s_->show_status();
  });
  s_->loop_thread = std::thread([this] { s_->loop.run(); });
}

void Agent::drain() {
  s_->loop.post([this] { s_->begin_drain(); });
}

bool Agent::finished() const { return s_->done.load(); }

void Agent::stop() {
  if (s_->loop_thread.joinable()) {
    s_->loop.post([this] {
      if (s_->link) s_->link->cancel();
      s_->loop.stop();
    });
    s_->loop_thread.join();
  }
  {
    std::lock_guard lock(s_->gpu_mu);
    s_->gpu_stop = true;
  }
  s_->gpu_cv.notify_all();
  if (s_->gpu_thread.joinable()) s_->gpu_thread.join();
  // The stream's last callbacks post to a loop that no longer runs: drop them with the rest, once
  // gRPC is done calling them.
  if (s_->link) s_->link->cancel();
  for (int i = 0; i < 1000 && s_->live_links.load() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (s_->live_links.load() > 0) {
    // gRPC has not ended a cancelled call in 10 s: its last callback would find the state freed.
    // Keep the state (the process is exiting anyway).
    spdlog::warn("the router stream did not close in time; exiting without cleanup");
    (void)s_.release();
    return;
  }
  s_->runner->abandon_all();
  s_->deployer.reset();
  s_->http.drop_all();
  s_->loop.drop_pending_work();
}

}  // namespace plexus::node
