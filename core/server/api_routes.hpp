#pragma once
// What each request means: the OpenAI API (/v1/chat/completions, /v1/models), health,
// readiness and /admin/reload. One ApiRoutes per event loop; requests it hands to an Exchange
// stay on that loop.
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "auth/key_store.hpp"
#include "config/config.hpp"
#include "dialects/translated.hpp"
#include "gateway/exchange.hpp"
#include "ledger/ledger_store.hpp"
#include "loop/loop_group.hpp"
#include "plugins/pipeline.hpp"
#include "server/dashboard_sessions.hpp"
#include "server/http_server.hpp"
#include "server/static_files.hpp"

namespace plexus {

// Shared by every loop. Read without locks; the counters are atomics.
struct ServerState {
  const Config& config;
  KeyStore keys;
  LoopGroup& loops;
  std::atomic<std::size_t> inflight{0};
  std::atomic<bool> draining{false};
  // Reloads the whole config (Router::reload_config) off the loops; `done` runs later on
  // `origin`'s loop with the HTTP status and the JSON report.
  std::function<void(EventLoop& origin, std::function<void(int status, std::string report)> done)> reload_config;
  std::shared_ptr<const StaticFiles> web;  // the pages (public receipt page) and their scripts
  metrics::Registry* metrics = nullptr;    // GET /metrics; null: none
  DashboardSessions dashboard_sessions;    // admins signed in to /dashboard
};

// A loop is reported stuck (and /readyz turns 503) when one turn has run this long.
constexpr double kStuckLoopSeconds = 2.0;

class ApiRoutes final : public RequestRouter {
 public:
  ApiRoutes(ServerState& state, ExchangeEnv& env) : state_(state), env_(env) {}

  void on_request(IncomingRequest request, std::shared_ptr<Responder> responder) override;
  void on_framing_error(const FramingError& error, std::shared_ptr<Responder> responder) override;

 public:  // for the route table (api_routes.cc)
  struct Call;

 private:
  void route(Call& call);
  bool authenticate(Call& call);
  void readiness(Call& call);
  bool authenticate_admin(Call& call, const char* what);
  void admin_reload(Call& call);
  void nodes(Call& call);
  void usage(Call& call);
  void jwks(Call& call);
  void prometheus(Call& call);
  void list_keys(Call& call);
  void create_key(Call& call);
  void revoke_key(Call& call, const std::string& id);
  void receipt(Call& call, const std::string& request_id);
  void receipt_page(Call& call);
  void receipt_chain(Call& call, const std::string& request_id);
  void asset(Call& call, const std::string& relative);
  void page_file(Call& call, const std::string& relative, const Headers& extra);
  static const Headers& page_headers();
  void dashboard_page(Call& call);
  void dashboard_login(Call& call);
  void dashboard_logout(Call& call);
  void dashboard_data(Call& call);
  void earnings(Call& call, const std::string& node);
  std::optional<ledger::Period> period_of(Call& call);
  void models(Call& call, const std::string& id);  // "": the list
  void embeddings(Call& call);
  void chat(Call& call);
  using Translate = std::variant<dialects::Translated, Error> (*)(std::string_view body);
  using MakeChannel = std::unique_ptr<ClientChannel> (*)(Call& call, nlohmann::json echo);
  void translated(Call& call, Translate translate, MakeChannel make_channel);
  void start_exchange(Call& call, ParsedChat chat, std::unique_ptr<ClientChannel> channel);

  ServerState& state_;
  ExchangeEnv& env_;
};

}  // namespace plexus
