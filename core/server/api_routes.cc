#include "server/api_routes.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "dialects/completions_channel.hpp"
#include "dialects/completions_request.hpp"
#include "dialects/messages_request.hpp"
#include "dialects/responses_channel.hpp"
#include "dialects/responses_request.hpp"
#include "gateway/chat_request.hpp"
#include "gateway/embeddings_request.hpp"
#include "nodes/node_json.hpp"
#include "server/api_call.hpp"
#include "server/responder_channel.hpp"
#include "util/request_id.hpp"

namespace plexus {
namespace {

using nlohmann::json;

constexpr std::int64_t kCreated = 1735689600;  // 2025-01-01: models here have no birth date

Error model_not_found(const std::string& model) {
  return {404, "The model '" + model + "' does not exist or you do not have access to it.",
          "invalid_request_error", "model", "model_not_found"};
}

}  // namespace

void ApiRoutes::on_request(IncomingRequest request, std::shared_ptr<Responder> responder) {
  Call call{std::move(request), std::move(responder), {}, {}, Exchange::Clock::now()};
  const std::string* given = call.request.header("x-request-id");
  call.request_id = given && is_acceptable_request_id(*given) ? *given : new_request_id();
  call.base = {{"x-request-id", call.request_id}};
  spdlog::debug("request {} {} {}", call.request_id, call.request.method, call.request.path);
  try {
    route(call);
  } catch (const std::exception& e) {
    // Only reachable through a bug: answer, log (never the request's content), keep serving.
    spdlog::error("request {}: internal error: {}", call.request_id, e.what());
    if (!call.responder->finished())
      call.error({500, "Internal error; the request id is in x-request-id", "server_error", "", "internal_error"});
  }
}

void ApiRoutes::on_framing_error(const FramingError& error, std::shared_ptr<Responder> responder) {
  Call call{{}, std::move(responder), new_request_id(), {}, Exchange::Clock::now()};
  call.base = {{"x-request-id", call.request_id}};
  call.error({error.status, error.message, "invalid_request_error", "", error.code});
}

void ApiRoutes::route(Call& call) {
  const std::string& path = call.request.path;
  const std::string& method = call.request.method;
  auto wrong_method = [&](const char* allowed) {
    call.error({405, "Method " + method + " is not allowed on " + path + "; use " + allowed,
                "invalid_request_error", "", "method_not_allowed"},
               {{"allow", allowed}});
  };

  if (path == "/healthz") {
    if (method != "GET") return wrong_method("GET");
    return call.json_reply(200, R"({"status":"ok"})");
  }
  if (path == "/readyz") {
    if (method != "GET") return wrong_method("GET");
    return readiness(call);
  }
  if (path == "/dashboard" || path == "/dashboard/") {
    if (method != "GET") return wrong_method("GET");
    return dashboard_page(call);
  }
  if (path == "/dashboard/login") {
    if (method != "POST") return wrong_method("POST");
    return dashboard_login(call);
  }
  if (path == "/dashboard/logout") {
    if (method != "POST") return wrong_method("POST");
    return dashboard_logout(call);
  }
  if (path == "/dashboard/data") {
    if (method != "GET") return wrong_method("GET");
    return dashboard_data(call);
  }
  if (path == "/metrics") {
    if (method != "GET") return wrong_method("GET");
    return prometheus(call);
  }
  if (path == "/admin/reload") {
    if (method != "POST") return wrong_method("POST");
    return admin_reload(call);
  }
  if (path == "/v1/nodes") {
    if (method != "GET") return wrong_method("GET");
    return nodes(call);
  }
  if (path.rfind("/v1/nodes/", 0) == 0 && path.size() > 19 && path.compare(path.size() - 9, 9, "/earnings") == 0) {
    if (method != "GET") return wrong_method("GET");
    return earnings(call, path.substr(10, path.size() - 19));
  }
  if (path == "/.well-known/jwks.json") {
    if (method != "GET") return wrong_method("GET");
    return jwks(call);
  }
  if (path.rfind("/receipts/", 0) == 0 && path.size() > 10) {
    if (method != "GET") return wrong_method("GET");
    std::string rest = path.substr(10);
    auto slash = rest.find('/');
    if (slash == std::string::npos) return receipt_page(call);
    if (rest.compare(slash, std::string::npos, "/chain") == 0) return receipt_chain(call, rest.substr(0, slash));
  }
  if (path.rfind("/assets/", 0) == 0) {
    if (method != "GET") return wrong_method("GET");
    return asset(call, path.substr(8));
  }
  if (path.rfind("/v1/receipts/", 0) == 0 && path.size() > 13) {
    if (method != "GET") return wrong_method("GET");
    if (!authenticate(call)) return;
    return receipt(call, path.substr(13));
  }
  if (path == "/v1/keys") {
    if (method != "GET" && method != "POST") return wrong_method("GET, POST");
    if (!authenticate_admin(call, "/v1/keys")) return;
    return method == "GET" ? list_keys(call) : create_key(call);
  }
  if (path.rfind("/v1/keys/", 0) == 0 && path.size() > 9) {
    if (method != "DELETE") return wrong_method("DELETE");
    if (!authenticate_admin(call, "/v1/keys/{id}")) return;
    return revoke_key(call, path.substr(9));
  }
  if (path == "/v1/usage") {
    if (method != "GET") return wrong_method("GET");
    if (!authenticate(call)) return;
    return usage(call);
  }
  if (path == "/v1/messages") {
    call.anthropic = true;
    if (method != "POST") return wrong_method("POST");
    if (!authenticate(call)) return;
    return translated(call, dialects::translate_messages_request, [](Call& c, nlohmann::json echo) -> std::unique_ptr<ClientChannel> {
      return std::make_unique<dialects::MessagesChannel>(c.responder, std::move(echo), c.request_id);
    });
  }
  if (path == "/v1/embeddings") {
    if (method != "POST") return wrong_method("POST");
    if (!authenticate(call)) return;
    auto parsed = parse_embeddings_request(call.request.body);
    if (auto* error = std::get_if<Error>(&parsed)) return call.error(*error);
    return start_exchange(call, std::move(std::get<ParsedChat>(parsed)), std::make_unique<ResponderChannel>(call.responder));
  }
  if (path == "/v1/completions") {
    if (method != "POST") return wrong_method("POST");
    if (!authenticate(call)) return;
    return translated(call, dialects::translate_completions_request, [](Call& c, nlohmann::json echo) -> std::unique_ptr<ClientChannel> {
      return std::make_unique<dialects::CompletionsChannel>(c.responder, std::move(echo));
    });
  }
  if (path == "/v1/responses") {
    if (method != "POST") return wrong_method("POST");
    if (!authenticate(call)) return;
    return translated(call, dialects::translate_responses_request, [](Call& c, nlohmann::json echo) -> std::unique_ptr<ClientChannel> {
      return std::make_unique<dialects::ResponsesChannel>(c.responder, std::move(echo));
    });
  }
  bool is_chat = path == "/v1/chat/completions";
  bool is_models = path == "/v1/models" || path.rfind("/v1/models/", 0) == 0;
  if (!is_chat && !is_models)
    return call.error({404, "Invalid URL (" + method + " " + path + ")", "invalid_request_error", "", "unknown_url"});
  if (is_chat && method != "POST") return wrong_method("POST");
  if (is_models && method != "GET") return wrong_method("GET");
  if (!authenticate(call)) return;
  if (is_models) return models(call);
  chat(call);
}

bool ApiRoutes::authenticate(Call& call) {
  if (!state_.keys.enabled()) return true;
  // Bearer auth, or x-api-key as Anthropic's clients send it.
  const std::string* auth = call.request.header("authorization");
  const std::string* api_key = call.request.header("x-api-key");
  std::string_view token = auth ? bearer_token(*auth) : std::string_view();
  if (token.empty() && api_key) token = *api_key;
  if (token.empty()) {
    call.error({401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "invalid_request_error", "", "missing_api_key"});
    return false;
  }
  auto found = state_.keys.authenticate(token);
  if (!found) {
    call.error({401, "Incorrect API key provided.", "invalid_request_error", "", "invalid_api_key"});
    return false;
  }
  call.caller = *found;
  if (const std::string* region = call.request.header("x-plexus-region"); region && region->size() <= 64)
    call.caller.region = *region;  // the client says where it is
  return true;
}

// Not ready while draining, or while any loop is stuck in one turn (a plugin that does not
// return): requests that land on that loop would wait.
void ApiRoutes::readiness(Call& call) {
  if (state_.draining.load()) return call.json_reply(503, R"({"status":"draining"})");
  auto stall = state_.loops.longest_turn();
  if (stall.seconds >= kStuckLoopSeconds) {
    json body{{"status", "stuck"}, {"loop", stall.loop}, {"busy_seconds", stall.seconds},
              {"busy_with", stall.busy_with ? json(stall.busy_with) : json()}};
    return call.json_reply(503, body.dump());
  }
  call.json_reply(200, R"({"status":"ready"})");
}

// The admin endpoints need an admin key, even when the API itself needs none.
bool ApiRoutes::authenticate_admin(Call& call, const char* what) {
  const std::string* auth = call.request.header("authorization");
  auto caller = auth ? state_.keys.authenticate(bearer_token(*auth)) : std::nullopt;
  if (caller && state_.keys.is_admin(caller->key_id)) return true;
  call.error({401, std::string("An admin key is required for ") + what + ".", "invalid_request_error", "",
              "admin_key_required"});
  return false;
}

// POST /admin/reload: re-reads the whole config file (as SIGHUP does). Admin keys only. 200 with
// what is now in force, or 422 naming the file and key path of what is wrong (the old config stays).
void ApiRoutes::admin_reload(Call& call) {
  if (!authenticate_admin(call, "/admin/reload")) return;
  auto responder = call.responder;
  Headers base = call.base;
  state_.reload_config(env_.loop, [responder, base](int status, std::string report) { send_json(*responder, status, base, report); });
}

// GET /v1/nodes: every node, direct and pull, with its models, load, health and GPUs.
void ApiRoutes::nodes(Call& call) {
  if (!authenticate_admin(call, "/v1/nodes")) return;
  json data = json::array();
  for (const auto& node : env_.nodes->snapshot()->nodes()) data.push_back(describe_node(*node));
  call.json_reply(200, json{{"object", "list"}, {"data", data}}.dump());
}

// GET /v1/models and /v1/models/{id}: what the caller's group can reach, and what each model
// serves ("serves": ["chat"], ["embeddings"], or both when nodes differ).
void ApiRoutes::models(Call& call) {
  auto listings = env_.nodes->snapshot()->models_for(call.caller.group);
  auto find = [&](const std::string& id) {
    return std::find_if(listings.begin(), listings.end(), [&](const auto& l) { return l.id == id; });
  };
  if (env_.aliases)  // an alias is listed when what it means is reachable
    for (const auto& [alias, target] : *env_.aliases)
      if (auto it = find(target); it != listings.end() && find(alias) == listings.end()) {
        auto listing = *it;
        listing.id = alias;
        listings.push_back(listing);
      }
  auto entry = [](const NodeSet::Listing& l) {
    json serves = json::array();
    if (l.chat) serves.push_back("chat");
    if (l.embeddings) serves.push_back("embeddings");
    return json{{"id", l.id}, {"object", "model"}, {"created", kCreated}, {"owned_by", "plexus"}, {"serves", serves}};
  };
  const std::string& path = call.request.path;
  if (path == "/v1/models") {
    json data = json::array();
    for (const auto& l : listings) data.push_back(entry(l));
    return call.json_reply(200, json{{"object", "list"}, {"data", data}}.dump());
  }
  std::string id = path.substr(std::string("/v1/models/").size());
  auto it = find(id);
  if (it == listings.end()) return call.error(model_not_found(id));
  call.json_reply(200, entry(*it).dump());
}

void ApiRoutes::chat(Call& call) {
  auto parsed = parse_chat_request(call.request.body);
  if (auto* error = std::get_if<Error>(&parsed)) return call.error(*error);
  start_exchange(call, std::move(std::get<ParsedChat>(parsed)), std::make_unique<ResponderChannel>(call.responder));
}

// Another API than chat completions (responses, messages, legacy completions): translated at the
// edge into one chat request, checked as any chat request, answered through that API's channel.
void ApiRoutes::translated(Call& call, Translate translate, MakeChannel make_channel) {
  auto translated = translate(call.request.body);
  if (auto* error = std::get_if<Error>(&translated)) return call.error(*error);
  auto& t = std::get<dialects::Translated>(translated);
  auto parsed = parse_chat_request(t.chat_body);
  if (auto* error = std::get_if<Error>(&parsed)) return call.error(*error);
  auto& chat = std::get<ParsedChat>(parsed);
  chat.as_sent = std::make_shared<const std::string>(std::move(call.request.body));
  start_exchange(call, std::move(chat), make_channel(call, std::move(t.echo)));
}

// One request, whatever API it came in, from here on: plugins, routing, relay, metering.
void ApiRoutes::start_exchange(Call& call, ParsedChat chat, std::unique_ptr<ClientChannel> channel) {
  if (state_.draining.load()) {
    call.responder->close_connection_after();
    return call.error({503, "The router is shutting down; retry on another instance.", "server_error", "", "shutting_down"});
  }
  if (state_.inflight.fetch_add(1) >= state_.config.server.max_inflight) {
    state_.inflight.fetch_sub(1);
    return call.error({429, "The router is at capacity; retry shortly.", "rate_limit_error", "", "router_at_capacity"},
                      {{"retry-after", "1"}});
  }
  auto responder = call.responder;
  ServerState* state = &state_;
  auto exchange = std::make_shared<Exchange>(
      env_, std::move(chat), call.caller, std::move(channel), call.request_id, call.received,
      [state] { state->inflight.fetch_sub(1); });
  std::weak_ptr<Exchange> weak = exchange;
  responder->when_gone([weak] {
    if (auto ex = weak.lock()) ex->client_gone();
  });
  exchange->start();
}

}  // namespace plexus
