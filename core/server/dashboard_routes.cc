#include "server/api_routes.hpp"

#include <nlohmann/json.hpp>

#include "ledger/ledger.hpp"
#include "metrics/metrics.hpp"
#include "nodes/node_json.hpp"
#include "server/api_call.hpp"

// The live dashboard (/dashboard): the page, signing in and out, and the data it polls.
namespace plexus {

using nlohmann::json;

namespace {

std::string today() {
  auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char out[16];
  std::strftime(out, sizeof out, "%Y-%m-%d", &tm);
  return out;
}

}  // namespace

// GET /dashboard: the page. It holds nothing secret; what it shows comes from /dashboard/data,
// which needs a signed-in admin.
void ApiRoutes::dashboard_page(Call& call) {
  Headers extra = page_headers();
  extra.emplace_back("cache-control", "no-cache");
  page_file(call, "dashboard/index.html", extra);
}

// POST /dashboard/login {"key": "..."}: an admin key opens a session, kept in an HttpOnly,
// SameSite=Strict cookie. The key travels in the body, never in a URL.
void ApiRoutes::dashboard_login(Call& call) {
  json body = json::parse(call.request.body, nullptr, false);
  std::string key = body.is_object() && body.contains("key") && body["key"].is_string() ? body["key"].get<std::string>() : "";
  auto caller = key.empty() ? std::nullopt : state_.keys.authenticate(key);
  if (!caller || !state_.keys.is_admin(caller->key_id))
    return call.error({401, "An admin key is required for the dashboard.", "invalid_request_error", "key", "admin_key_required"});
  std::string cookie = std::string(DashboardSessions::kCookie) + "=" + state_.dashboard_sessions.open(caller->key_id) +
                       "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" +
                       std::to_string(std::chrono::seconds(DashboardSessions::kLifetime).count());
  if (!state_.config.server.tls_cert.empty()) cookie += "; Secure";
  call.json_reply(200, json{{"signed_in", true}, {"key", caller->key_id}}.dump(), {{"set-cookie", cookie}});
}

void ApiRoutes::dashboard_logout(Call& call) {
  state_.dashboard_sessions.close(DashboardSessions::token_in(call.request.header("cookie")));
  call.json_reply(200, R"({"signed_in":false})",
                  {{"set-cookie", std::string(DashboardSessions::kCookie) + "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"}});
}

// GET /dashboard/data: everything the page shows, now. Nodes as /v1/nodes describes them,
// requests by node since the router started, today's usage and spend per key, the latest errors.
void ApiRoutes::dashboard_data(Call& call) {
  // The session's key must still be an admin key: a key revoked, or no longer admin after a
  // reload, ends its sessions.
  std::string who = state_.dashboard_sessions.who(DashboardSessions::token_in(call.request.header("cookie")));
  if (who.empty() || !state_.keys.is_admin(who))
    return call.error({401, "Sign in to the dashboard with an admin key.", "invalid_request_error", "", "not_signed_in"});
  json nodes = json::array();
  for (const auto& node : env_.nodes->snapshot()->nodes()) nodes.push_back(describe_node(*node));
  json traffic = json::object();
  if (state_.metrics)
    for (const auto& [node, n] : state_.metrics->requests_by_node()) traffic[node] = n;
  json errors = json::array();
  if (state_.metrics)
    for (const auto& e : state_.metrics->recent_errors())
      errors.push_back({{"at", e.at_ms}, {"request_id", e.request_id}, {"model", e.model}, {"node", e.node},
                        {"status", e.status}, {"code", e.code}});
  json data = {{"time", std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count()},
               {"router", {{"inflight", state_.inflight.load()}, {"queued", env_.nodes->waiting()},
                           {"ledger_queued", env_.ledger ? env_.ledger->queued() : 0}}},
               {"nodes", nodes},
               {"traffic", traffic},
               {"errors", errors},
               {"usage", json::array()}};
  if (!env_.ledger) return call.json_reply(200, data.dump(-1, ' ', false, json::error_handler_t::replace), {{"cache-control", "no-store"}});
  auto responder = call.responder;
  Headers base = call.base;
  base.emplace_back("cache-control", "no-store");
  std::string day = today();
  env_.ledger->query([day](ledger::Store& store) { return store.usage("", {day, day}); }, env_.loop,
                     [responder, base, data](json usage) mutable {
                       if (usage.is_array()) data["usage"] = std::move(usage);
                       send_json(*responder, 200, base, data.dump(-1, ' ', false, json::error_handler_t::replace));
                     });
}

}  // namespace plexus
