#include "server/api_routes.hpp"

#include <nlohmann/json.hpp>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "gateway/chat_request.hpp"
#include "gateway/error_body.hpp"
#include "auth/sha256.hpp"
#include "config/schema.hpp"
#include "ledger/ledger.hpp"
#include "receipts/receipt_chain.hpp"
#include "nodes/node_json.hpp"
#include "server/responder_channel.hpp"
#include "util/request_id.hpp"

namespace plexus {
namespace {

using nlohmann::json;

constexpr std::int64_t kCreated = 1735689600;  // 2025-01-01: models here have no birth date

// A JSON answer with the request's own headers (x-request-id) and any extra ones.
void send_json(Responder& r, int status, const Headers& base, std::string_view body, const Headers& extra = {}) {
  Headers h{{"content-type", "application/json"}};
  h.insert(h.end(), base.begin(), base.end());
  h.insert(h.end(), extra.begin(), extra.end());
  r.send_whole(status, h, body);
}

Error model_not_found(const std::string& model) {
  return {404, "The model '" + model + "' does not exist or you do not have access to it.",
          "invalid_request_error", "model", "model_not_found"};
}

}  // namespace

struct ApiRoutes::Call {
  IncomingRequest request;
  std::shared_ptr<Responder> responder;
  std::string request_id;
  Headers base;  // x-request-id, on every answer
  Exchange::Clock::time_point received;
  Caller caller{"-", "public", "", ""};

  void json_reply(int status, std::string_view body, const Headers& extra = {}) {
    send_json(*responder, status, base, body, extra);
  }
  void error(const Error& e, const Headers& extra = {}) { json_reply(e.status, error_body(e), extra); }
};

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
  const std::string* auth = call.request.header("authorization");
  if (!auth || bearer_token(*auth).empty()) {
    call.error({401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "invalid_request_error", "", "missing_api_key"});
    return false;
  }
  auto found = state_.keys.authenticate(bearer_token(*auth));
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

// POST /admin/reload: re-reads every Lua plugin on every loop (as SIGHUP does). Admin keys only.
void ApiRoutes::admin_reload(Call& call) {
  if (!authenticate_admin(call, "/admin/reload")) return;
  auto responder = call.responder;
  Headers base = call.base;
  state_.reload_plugins(env_.loop, [responder, base](std::vector<Pipeline::ReloadResult> results) {
    json list = json::array();
    bool ok = true;
    for (const auto& r : results) {
      list.push_back({{"plugin", r.name}, {"reloaded", r.error.empty()}, {"error", r.error.empty() ? json() : json(r.error)}});
      ok = ok && r.error.empty();
    }
    send_json(*responder, ok ? 200 : 422, base, json{{"plugins", list}}.dump());
  });
}

// A query's period: ?from=YYYY-MM-DD&to=YYYY-MM-DD (UTC days, inclusive); by default the last 30
// days. Nothing else is accepted, so a typo is an error rather than a silently wider answer.
std::optional<ledger::Period> ApiRoutes::period_of(Call& call) {
  auto day = [](const std::string& s) {
    return s.size() == 10 && s[4] == '-' && s[7] == '-' &&
           std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || c == '-'; });
  };
  auto today = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  auto format = [](std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char out[16];
    std::strftime(out, sizeof out, "%Y-%m-%d", &tm);
    return std::string(out);
  };
  ledger::Period p{format(today - 29 * 86400), format(today)};
  for (const auto& [name, value] : call.request.query()) {
    if ((name != "from" && name != "to") || !day(value)) {
      call.error(Error::invalid_request("Query parameters are from and to, as YYYY-MM-DD", name, "invalid_period"));
      return std::nullopt;
    }
    (name == "from" ? p.from : p.to) = value;
  }
  return p;
}

// GET /.well-known/jwks.json: the keys receipts are signed with, for anyone to verify them.
void ApiRoutes::jwks(Call& call) {
  if (!env_.receipts) return call.json_reply(200, R"({"keys":[]})");
  const auto& key = env_.receipts->key();
  call.json_reply(200, "{\"keys\":[" + receipts::jwk_json(key.public_key(), key.kid()) + "]}", {{"cache-control", "public, max-age=300"}});
}

// GET /v1/receipts/{request_id}: a request's signed receipt (streams get theirs here).
void ApiRoutes::receipt(Call& call, const std::string& request_id) {
  if (!env_.ledger) return call.error({503, "This router keeps no ledger", "server_error", "", "no_ledger"});
  auto responder = call.responder;
  Headers base = call.base;
  env_.ledger->query([request_id](ledger::Store& store) { return json(store.receipt(request_id)); }, env_.loop,
                     [responder, base, request_id](json jws) {
                       if (!jws.is_string() || jws.get<std::string>().empty())
                         return send_json(*responder, 404, base,
                                          error_body({404, "No receipt for request '" + request_id + "'", "invalid_request_error",
                                                      "request_id", "receipt_not_found"}));
                       send_json(*responder, 200, base,
                                 json{{"object", "receipt"}, {"request_id", request_id}, {"receipt", jws}}.dump());
                     });
}

namespace {

// What POST /v1/keys takes, checked by the same schema mechanism as the config.
const ConfigSchema& new_key_schema() {
  static const ConfigSchema s = {
      field::string("id", "", "A name for logs and usage (default: made up)"),
      field::string("group", "public", "The group whose nodes the key reaches"),
      field::boolean("admin", false, "May call the admin endpoints"),
      field::integer("rpm", 0, "Requests per minute (0: no limit)").range(0, 100000000),
      field::integer("tpm", 0, "Tokens per minute (0: no limit)").range(0, 100000000000.0),
      field::number("budget", -1, "Budget in the prices' currency (absent: none)").at_least(-1),
  };
  return s;
}

std::string random_base64url(std::size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1)
    throw std::runtime_error("no randomness for a new key");
  return receipts::base64url(raw);
}

json key_json(const KeyConfig& k, const metering::Budgets* budgets) {
  json j = {{"object", "api_key"}, {"id", k.id}, {"group", k.group}, {"admin", k.admin}, {"rpm", k.rpm}, {"tpm", k.tpm},
            {"source", k.from_api ? "api" : "config"}};
  j["budget"] = k.budget ? json(*k.budget) : json();
  const auto* entry = budgets && k.budget ? budgets->find(k.id) : nullptr;
  j["spent"] = entry ? json(metering::Budgets::spent(*entry)) : json();
  if (k.from_api) j["created"] = k.created_ms / 1000;
  return j;
}

}  // namespace

// GET /v1/keys (admin): every key, never the key itself.
void ApiRoutes::list_keys(Call& call) {
  json data = json::array();
  for (const auto& k : *state_.keys.snapshot()) data.push_back(key_json(k, env_.budgets));
  call.json_reply(200, json{{"object", "list"}, {"data", data}}.dump());
}

// POST /v1/keys (admin): a new key, kept in the ledger as its hash; the key is shown this once.
void ApiRoutes::create_key(Call& call) {
  if (!env_.ledger) return call.error({503, "Keys are kept in the ledger, and this router keeps none", "server_error", "", "no_ledger"});
  json body = json::parse(call.request.body.empty() ? "{}" : call.request.body, nullptr, false);
  json checked;
  try {
    checked = config::apply_schema(new_key_schema(), config::JsonPath(body, "", ""));
  } catch (const ConfigError& e) {
    std::string message = e.what();
    return call.error(Error::invalid_request(message.rfind(": ", 0) == 0 ? message.substr(2) : message, "", "invalid_key_request"));
  }
  KeyConfig k;
  std::string secret = "sk-plexus-" + random_base64url(32);
  k.id = checked["id"].get<std::string>().empty() ? "key_" + random_base64url(9) : checked["id"].get<std::string>();
  k.key_hash = sha256(secret);
  k.group = checked["group"].get<std::string>();
  k.admin = checked["admin"].get<bool>();
  k.rpm = checked["rpm"].get<std::int64_t>();
  k.tpm = checked["tpm"].get<std::int64_t>();
  if (checked["budget"].get<double>() >= 0) k.budget = checked["budget"].get<double>();
  k.from_api = true;
  k.created_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  for (const auto& existing : *state_.keys.snapshot())
    if (existing.id == k.id)
      return call.error({409, "A key with id '" + k.id + "' exists", "invalid_request_error", "id", "key_exists"});
  auto responder = call.responder;
  Headers base = call.base;
  // Kept first, then served: a key that works is a key that survives a restart.
  env_.ledger->query([k](ledger::Store& store) { store.add_key(k); return json(true); }, env_.loop,
                     [this, responder, base, k, secret](json stored) {
                       if (!stored.is_boolean())
                         return send_json(*responder, 500, base, error_body({500, "The key could not be stored", "server_error", "", "ledger_error"}));
                       if (!state_.keys.add(k))
                         return send_json(*responder, 409, base, error_body({409, "A key with id '" + k.id + "' exists", "invalid_request_error", "id", "key_exists"}));
                       if (env_.rate_limits && (k.rpm > 0 || k.tpm > 0)) env_.rate_limits->set(k.id, k.rpm, k.tpm);
                       if (env_.budgets && k.budget) env_.budgets->set(k.id, *k.budget);
                       json j = key_json(k, env_.budgets);
                       j["key"] = secret;
                       send_json(*responder, 201, base, j.dump());
                     });
}

// DELETE /v1/keys/{id} (admin): the key stops working at once; keys of the config stay.
void ApiRoutes::revoke_key(Call& call, const std::string& id) {
  bool from_config = false;
  if (!state_.keys.revoke(id, from_config)) {
    if (from_config)
      return call.error({409, "The key '" + id + "' is in the config file: remove it there", "invalid_request_error", "id", "key_in_config"});
    return call.error({404, "No key '" + id + "'", "invalid_request_error", "id", "key_not_found"});
  }
  auto when = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  if (!env_.ledger) return call.json_reply(200, json{{"object", "api_key"}, {"id", id}, {"revoked", true}}.dump());
  auto responder = call.responder;
  Headers base = call.base;
  env_.ledger->query([id, when](ledger::Store& store) { store.revoke_key(id, when); return json(true); }, env_.loop,
                     [responder, base, id](json) {
                       send_json(*responder, 200, base, json{{"object", "api_key"}, {"id", id}, {"revoked", true}}.dump());
                     });
}

// GET /v1/usage: the caller key's usage by day and model; an admin key sees every key's.
void ApiRoutes::usage(Call& call) {
  auto period = period_of(call);
  if (!period) return;
  if (!env_.ledger) return call.error({503, "This router keeps no ledger", "server_error", "", "no_ledger"});
  std::string key = state_.keys.is_admin(call.caller.key_id) ? "" : call.caller.key_id;
  auto responder = call.responder;
  Headers base = call.base;
  env_.ledger->query([key, p = *period](ledger::Store& store) { return store.usage(key, p); }, env_.loop,
                     [responder, base, p = *period](json rows) {
                       if (rows.is_null())
                         return send_json(*responder, 500, base, error_body({500, "The ledger could not be read", "server_error", "", "ledger_error"}));
                       send_json(*responder, 200, base, json{{"object", "list"}, {"from", p.from}, {"to", p.to}, {"data", rows}}.dump());
                     });
}

// GET /v1/nodes/{id}/earnings: what a node earned by day, before and after the network's fee.
// Admin keys only (a node's own token: when nodes get accounts).
void ApiRoutes::earnings(Call& call, const std::string& node) {
  if (!authenticate_admin(call, "/v1/nodes/{id}/earnings")) return;
  auto period = period_of(call);
  if (!period) return;
  if (!env_.ledger) return call.error({503, "This router keeps no ledger", "server_error", "", "no_ledger"});
  auto responder = call.responder;
  Headers base = call.base;
  double fee = env_.fee;
  env_.ledger->query([node, p = *period](ledger::Store& store) { return store.node_days(node, p); }, env_.loop,
                     [responder, base, node, fee, p = *period](json days) {
                       if (days.is_null())
                         return send_json(*responder, 500, base, error_body({500, "The ledger could not be read", "server_error", "", "ledger_error"}));
                       double gross = 0;
                       std::int64_t requests = 0, in = 0, out = 0;
                       for (auto& d : days) {
                         gross += d["gross"].get<double>();
                         requests += d["requests"].get<std::int64_t>();
                         in += d["prompt_tokens"].get<std::int64_t>();
                         out += d["completion_tokens"].get<std::int64_t>();
                         d["fee"] = d["gross"].get<double>() * fee;
                         d["net"] = d["gross"].get<double>() * (1 - fee);
                       }
                       json statement = {{"object", "node.earnings"}, {"node", node}, {"from", p.from}, {"to", p.to},
                                         {"fee_rate", fee}, {"requests", requests}, {"prompt_tokens", in},
                                         {"completion_tokens", out}, {"gross", gross}, {"fee", gross * fee},
                                         {"net", gross * (1 - fee)}, {"days", days}};
                       send_json(*responder, 200, base, statement.dump());
                     });
}

// GET /v1/nodes: every node, direct and pull, with its models, load, health and GPUs.
void ApiRoutes::nodes(Call& call) {
  if (!authenticate_admin(call, "/v1/nodes")) return;
  json data = json::array();
  for (const auto& node : env_.nodes->snapshot()->nodes()) data.push_back(describe_node(*node));
  call.json_reply(200, json{{"object", "list"}, {"data", data}}.dump());
}

void ApiRoutes::models(Call& call) {
  auto ids = env_.nodes->snapshot()->models_for(call.caller.group);
  if (env_.aliases)  // an alias is listed when what it means is reachable
    for (const auto& [alias, target] : *env_.aliases)
      if (std::find(ids.begin(), ids.end(), target) != ids.end() && std::find(ids.begin(), ids.end(), alias) == ids.end())
        ids.push_back(alias);
  auto entry = [&](const std::string& id) {
    return json{{"id", id}, {"object", "model"}, {"created", kCreated}, {"owned_by", "plexus"}};
  };
  const std::string& path = call.request.path;
  if (path == "/v1/models") {
    json data = json::array();
    for (const auto& id : ids) data.push_back(entry(id));
    return call.json_reply(200, json{{"object", "list"}, {"data", data}}.dump());
  }
  std::string id = path.substr(std::string("/v1/models/").size());
  if (std::find(ids.begin(), ids.end(), id) == ids.end()) return call.error(model_not_found(id));
  call.json_reply(200, entry(id).dump());
}

void ApiRoutes::chat(Call& call) {
  if (state_.draining.load()) {
    call.responder->close_connection_after();
    return call.error({503, "The router is shutting down; retry on another instance.", "server_error", "", "shutting_down"});
  }
  auto parsed = parse_chat_request(call.request.body);
  if (auto* error = std::get_if<Error>(&parsed)) return call.error(*error);

  if (state_.inflight.fetch_add(1) >= state_.config.server.max_inflight) {
    state_.inflight.fetch_sub(1);
    return call.error({429, "The router is at capacity; retry shortly.", "rate_limit_error", "", "router_at_capacity"},
                      {{"retry-after", "1"}});
  }
  auto responder = call.responder;
  ServerState* state = &state_;
  auto exchange = std::make_shared<Exchange>(
      env_, std::move(std::get<ParsedChat>(parsed)), call.caller,
      std::make_unique<ResponderChannel>(responder), call.request_id, call.received,
      [state] { state->inflight.fetch_sub(1); });
  std::weak_ptr<Exchange> weak = exchange;
  responder->when_gone([weak] {
    if (auto ex = weak.lock()) ex->client_gone();
  });
  exchange->start();
}

}  // namespace plexus
