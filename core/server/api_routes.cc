#include "server/api_routes.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_map>

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
  Call call{std::move(request), std::move(responder), {}, {}, env_.loop.now()};
  const std::string* given = call.request.header("x-request-id");
  call.request_id = given && is_acceptable_request_id(*given) ? *given : new_request_id();
  call.base.reserve(4);
  call.base.emplace_back("x-request-id", call.request_id);
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
  Call call{{}, std::move(responder), new_request_id(), {}, env_.loop.now()};
  call.base = {{"x-request-id", call.request_id}};
  call.error({error.status, error.message, "invalid_request_error", "", error.code});
}

namespace {

// Who may call a route.
enum class Access { kAnyone, kKey, kAdmin };

// One route: a method on a path pattern, where "{}" is one path segment and a trailing "*" the
// rest of the path (model ids hold slashes); what matched is the handler's `arg`.
struct Route {
  const char* method;
  const char* pattern;
  Access access;
  void (*handler)(ApiRoutes& routes, ApiRoutes::Call& call, const std::string& arg);
  bool anthropic = false;  // errors in Anthropic's shape, from the first (405, 401...)
};

// Whether `path` matches `pattern`; `arg` gets what "{}" or "*" matched.
bool matches(std::string_view pattern, std::string_view path, std::string& arg) {
  std::size_t i = 0, j = 0;  // in pattern, in path
  while (i < pattern.size()) {
    char p = pattern[i];
    if (p == '*') {  // the rest of the path, whatever it is (only ever last)
      if (j == path.size()) return false;
      arg = path.substr(j);
      return true;
    }
    if (p == '{') {  // "{}": one segment
      std::size_t end = j;
      while (end < path.size() && path[end] != '/') ++end;
      if (end == j) return false;
      arg = path.substr(j, end - j);
      i += 2;
      j = end;
      continue;
    }
    if (j == path.size() || path[j] != p) return false;  // most routes fail within a few bytes
    ++i;
    ++j;
  }
  return j == path.size();
}

}  // namespace

// Every route the router serves, in one table: the place to look for what exists and who may
// call it.
void ApiRoutes::route(Call& call) {
  using A = Access;
  using R = ApiRoutes;
  static const Route routes[] = {
      {"GET", "/healthz", A::kAnyone, [](R&, Call& c, const std::string&) { c.json_reply(200, R"({"status":"ok"})"); }},
      {"GET", "/readyz", A::kAnyone, [](R& r, Call& c, const std::string&) { r.readiness(c); }},
      {"GET", "/metrics", A::kAnyone, [](R& r, Call& c, const std::string&) { r.prometheus(c); }},
      {"GET", "/dashboard", A::kAnyone, [](R& r, Call& c, const std::string&) { r.dashboard_page(c); }},
      {"GET", "/dashboard/", A::kAnyone, [](R& r, Call& c, const std::string&) { r.dashboard_page(c); }},
      {"POST", "/dashboard/login", A::kAnyone, [](R& r, Call& c, const std::string&) { r.dashboard_login(c); }},
      {"POST", "/dashboard/logout", A::kAnyone, [](R& r, Call& c, const std::string&) { r.dashboard_logout(c); }},
      {"GET", "/dashboard/data", A::kAnyone, [](R& r, Call& c, const std::string&) { r.dashboard_data(c); }},
      {"GET", "/.well-known/jwks.json", A::kAnyone, [](R& r, Call& c, const std::string&) { r.jwks(c); }},
      {"GET", "/receipts/{}", A::kAnyone, [](R& r, Call& c, const std::string&) { r.receipt_page(c); }},
      {"GET", "/receipts/{}/chain", A::kAnyone, [](R& r, Call& c, const std::string& id) { r.receipt_chain(c, id); }},
      {"GET", "/assets/*", A::kAnyone, [](R& r, Call& c, const std::string& file) { r.asset(c, file); }},
      {"POST", "/admin/reload", A::kAdmin, [](R& r, Call& c, const std::string&) { r.admin_reload(c); }},
      {"GET", "/v1/nodes", A::kAdmin, [](R& r, Call& c, const std::string&) { r.nodes(c); }},
      {"GET", "/v1/nodes/{}/earnings", A::kAdmin, [](R& r, Call& c, const std::string& node) { r.earnings(c, node); }},
      {"GET", "/v1/keys", A::kAdmin, [](R& r, Call& c, const std::string&) { r.list_keys(c); }},
      {"POST", "/v1/keys", A::kAdmin, [](R& r, Call& c, const std::string&) { r.create_key(c); }},
      {"DELETE", "/v1/keys/*", A::kAdmin, [](R& r, Call& c, const std::string& id) { r.revoke_key(c, id); }},
      {"GET", "/v1/usage", A::kKey, [](R& r, Call& c, const std::string&) { r.usage(c); }},
      {"GET", "/v1/receipts/*", A::kKey, [](R& r, Call& c, const std::string& id) { r.receipt(c, id); }},
      {"GET", "/v1/models", A::kKey, [](R& r, Call& c, const std::string&) { r.models(c, ""); }},
      {"GET", "/v1/models/*", A::kKey, [](R& r, Call& c, const std::string& id) { r.models(c, id); }},
      {"POST", "/v1/chat/completions", A::kKey, [](R& r, Call& c, const std::string&) { r.chat(c); }},
      {"POST", "/v1/embeddings", A::kKey, [](R& r, Call& c, const std::string&) { r.embeddings(c); }},
      {"POST", "/v1/responses", A::kKey,
       [](R& r, Call& c, const std::string&) {
         r.translated(c, dialects::translate_responses_request, [](Call& call, nlohmann::json echo) -> std::unique_ptr<ClientChannel> {
           return std::make_unique<dialects::ResponsesChannel>(call.responder, std::move(echo));
         });
       }},
      {"POST", "/v1/completions", A::kKey,
       [](R& r, Call& c, const std::string&) {
         r.translated(c, dialects::translate_completions_request, [](Call& call, nlohmann::json echo) -> std::unique_ptr<ClientChannel> {
           return std::make_unique<dialects::CompletionsChannel>(call.responder, std::move(echo));
         });
       }},
      {"POST", "/v1/messages", A::kKey,
       [](R& r, Call& c, const std::string&) {
         r.translated(c, dialects::translate_messages_request, [](Call& call, nlohmann::json echo) -> std::unique_ptr<ClientChannel> {
           return std::make_unique<dialects::MessagesChannel>(call.responder, std::move(echo), call.request_id);
         });
       },
       true},
  };
  const std::string& path = call.request.path;
  const std::string& method = call.request.method;
  // Most paths are literal ("/v1/chat/completions"): those are found by one hash look-up; only
  // the rest are matched pattern by pattern. No literal pattern matches a path a pattern with a
  // hole matches, so the two sets never compete.
  struct Index {
    std::unordered_map<std::string_view, std::vector<const Route*>> literal;  // by path
    std::vector<const Route*> holed;                                          // "{}" or "*" in them
  };
  static const Index index = [] {
    Index i;
    for (const auto& r : routes) {
      if (std::string_view(r.pattern).find_first_of("{*") == std::string_view::npos)
        i.literal[r.pattern].push_back(&r);
      else
        i.holed.push_back(&r);
    }
    return i;
  }();
  std::string arg;
  const Route* found = nullptr;
  bool path_known = false;
  auto take = [&](const Route& r, std::string&& matched) {
    path_known = true;
    call.anthropic = call.anthropic || r.anthropic;
    if (method == r.method && !found) {
      found = &r;
      arg = std::move(matched);
    }
  };
  if (auto it = index.literal.find(path); it != index.literal.end()) {
    for (const Route* r : it->second) take(*r, {});
  } else {
    for (const Route* r : index.holed) {
      std::string matched;
      if (matches(r->pattern, path, matched)) take(*r, std::move(matched));
    }
  }
  if (!path_known)
    return call.error({404, "Invalid URL (" + method + " " + path + ")", "invalid_request_error", "", "unknown_url"});
  if (!found) {
    std::string allowed, ignored;
    for (const auto& r : routes)
      if (matches(r.pattern, path, ignored)) allowed += (allowed.empty() ? "" : ", ") + std::string(r.method);
    return call.error({405, "Method " + method + " is not allowed on " + path + "; use " + allowed, "invalid_request_error",
                       "", "method_not_allowed"},
                      {{"allow", allowed}});
  }
  if (found->access == Access::kKey && !authenticate(call)) return;
  if (found->access == Access::kAdmin) {
    std::string what = found->pattern;  // as the docs write it: /v1/keys/{id}
    for (std::string_view hole : {"{}", "*"})
      if (auto at = what.find(hole); at != std::string::npos) what.replace(at, hole.size(), "{id}");
    if (!authenticate_admin(call, what.c_str())) return;
  }
  found->handler(*this, call, arg);
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
  auto responder = call.responder;
  Headers base = call.base;
  state_.reload_config(env_.loop, [responder, base](int status, std::string report) { send_json(*responder, status, base, report); });
}

// GET /v1/nodes: every node, direct and pull, with its models, load, health and GPUs.
void ApiRoutes::nodes(Call& call) {
  json data = json::array();
  for (const auto& node : env_.nodes->snapshot()->nodes()) data.push_back(describe_node(*node));
  call.json_reply(200, json{{"object", "list"}, {"data", data}}.dump());
}

// GET /v1/models and /v1/models/{id}: what the caller's group can reach, and what each model
// serves ("serves": ["chat"], ["embeddings"], or both when nodes differ).
void ApiRoutes::models(Call& call, const std::string& id) {
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
  if (id.empty()) {
    json data = json::array();
    for (const auto& l : listings) data.push_back(entry(l));
    return call.json_reply(200, json{{"object", "list"}, {"data", data}}.dump());
  }
  auto it = find(id);
  if (it == listings.end()) return call.error(model_not_found(id));
  call.json_reply(200, entry(*it).dump());
}

void ApiRoutes::chat(Call& call) {
  const std::string& body = call.request.body;
  auto parsed = parse_chat_request(body, body.capacity() - body.size());  // the front kept simdjson's padding
  if (auto* error = std::get_if<Error>(&parsed)) return call.error(*error);
  start_exchange(call, std::move(std::get<ParsedChat>(parsed)), std::make_unique<ResponderChannel>(call.responder));
}

// POST /v1/embeddings: through the same exchange as chat, answered whole by an embedding model.
void ApiRoutes::embeddings(Call& call) {
  auto parsed = parse_embeddings_request(call.request.body);
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
