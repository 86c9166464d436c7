#include "server/api_routes.hpp"

#include <nlohmann/json.hpp>
#include <openssl/rand.h>

#include <algorithm>

#include "auth/sha256.hpp"
#include "config/schema.hpp"
#include "ledger/ledger.hpp"
#include "receipts/jws.hpp"
#include "server/api_call.hpp"

// The ledger's endpoints: usage per key, a node's earnings, and API keys (admin).
namespace plexus {

using nlohmann::json;

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

}  // namespace plexus
