#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "auth/sha256.hpp"
#include "config/config.hpp"
#include "config/json_path.hpp"
#include "config/schema.hpp"
#include "config/sections.hpp"
#include "routing/policy.hpp"

namespace plexus {
namespace {

using config::apply_schema;
using config::JsonPath;
using nlohmann::json;

bool is_http_url(const std::string& url) {
  auto rest = url.rfind("http://", 0) == 0 ? url.substr(7)
              : url.rfind("https://", 0) == 0 ? url.substr(8)
                                                : std::string();
  return !rest.empty() && rest.front() != '/' && rest.find_first_of(" \t\r\n") == std::string::npos;
}

std::string resolve_against(const std::string& file, const std::string& relative) {
  namespace fs = std::filesystem;
  if (relative.empty() || fs::path(relative).is_absolute()) return relative;
  return (fs::path(file).parent_path() / relative).lexically_normal().string();
}

// A declared section's cursor: the value when present, else an empty object at its path.
JsonPath section(const JsonPath& parent, const char* key) {
  static const json kAbsent = json::object();
  if (parent.has(key)) return parent.at(key);
  return JsonPath(kAbsent, parent.file(), parent.path().empty() ? key : parent.path() + "." + key);
}

void load_server(const JsonPath& root, Config& cfg) {
  auto& s = cfg.server;
  if (root.has("listen"))
    parse_listen(root.string("listen"), root.file() + ": listen", s.host, s.port);
  s.threads = static_cast<int>(root.integer("threads", 0, 256, 0));  // 0: one per core
  if (root.has("tls")) {
    JsonPath tls = root.at("tls");
    tls.expect_object({"cert", "key"});
    s.tls_cert = resolve_against(cfg.file, tls.string("cert"));
    s.tls_key = resolve_against(cfg.file, tls.string("key"));
    for (auto [key, path] : {std::pair{"cert", s.tls_cert}, std::pair{"key", s.tls_key}})
      if (!std::filesystem::exists(path)) tls.at(key).fail("file not found: " + path);
  }
  // Declared in sections.cc; absent, every default applies.
  json lim = apply_schema(config::limits_schema(), section(root, "limits"));
  s.max_body_bytes = lim["max_body_bytes"].get<std::size_t>();
  s.max_inflight = lim["max_inflight"].get<std::size_t>();
  s.shutdown_grace = std::chrono::milliseconds(lim["shutdown_grace_ms"].get<std::int64_t>());
  s.max_stream_duration = std::chrono::seconds(lim["max_stream_duration_s"].get<std::int64_t>());
  s.request_timeout = std::chrono::seconds(lim["request_timeout_s"].get<std::int64_t>());
  s.keepalive_timeout = std::chrono::seconds(lim["keepalive_timeout_s"].get<std::int64_t>());
  json ledger = apply_schema(config::ledger_schema(), section(root, "ledger"));
  cfg.ledger.enabled = ledger["enabled"].get<bool>();
  cfg.ledger.path = resolve_against(cfg.file, ledger["path"].get<std::string>());
  cfg.ledger.postgres = ledger["postgres"].get<std::string>();
  cfg.ledger.flush = std::chrono::milliseconds(ledger["flush_ms"].get<std::int64_t>());
  cfg.ledger.fee = ledger["fee"].get<double>();
  json receipts = apply_schema(config::receipts_schema(), section(root, "receipts"));
  cfg.ledger.receipts = receipts["enabled"].get<bool>();
  cfg.ledger.receipt_key_file = resolve_against(cfg.file, receipts["key_file"].get<std::string>());
  json web = apply_schema(config::web_schema(), section(root, "web"));
  cfg.web_root = web["root"].get<std::string>().empty() ? "" : resolve_against(cfg.file, web["root"].get<std::string>());
  json cluster = apply_schema(config::cluster_schema(), section(root, "cluster"));
  cfg.cluster.redis = cluster["redis"].get<std::string>();
  cfg.cluster.id = cluster["id"].get<std::string>();
  cfg.cluster.sync = std::chrono::milliseconds(cluster["sync_ms"].get<std::int64_t>());
  cfg.cluster.node_address = cluster["node_address"].get<std::string>();
  if (!cfg.cluster.redis.empty() && cfg.cluster.id.empty())
    throw ConfigError(cfg.file + ": cluster.id: required with cluster.redis: give each router its own name");
  if (cfg.cluster.id.size() > 64 ||
      !std::all_of(cfg.cluster.id.begin(), cfg.cluster.id.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'; }))
    throw ConfigError(cfg.file + ": cluster.id: letters, digits, '.', '_' and '-', at most 64");
  json workers = apply_schema(config::workers_schema(), section(root, "workers"));
  cfg.workers.threads = workers["threads"].get<int>();
  cfg.workers.queue_limit = workers["queue_limit"].get<std::size_t>();
}

std::vector<std::string> string_list(const JsonPath& list) {
  list.expect_array();
  std::vector<std::string> out;
  for (size_t i = 0; i < list.size(); ++i) {
    if (!list.at(i).value().is_string() || list.at(i).value().get<std::string>().empty())
      list.at(i).fail("expected a non-empty string");
    out.push_back(list.at(i).value().get<std::string>());
  }
  return out;
}

// A secret given as plain text under `plain` or as its SHA-256 under `hashed`; only the hash is
// kept.
Sha256 secret_hash(const JsonPath& p, const char* plain, const char* hashed) {
  if (p.has(plain) == p.has(hashed))
    p.fail(std::string("give exactly one of \"") + plain + "\" or \"" + hashed + "\"");
  if (p.has(plain)) {
    std::string text = p.string(plain);
    if (text.size() < 8) p.at(plain).fail("too short: use at least 8 characters");
    return sha256(text);
  }
  auto digest = parse_sha256_hex(p.string(hashed));
  if (!digest) p.at(hashed).fail(std::string("expected 64 hex digits (sha256sum of the ") + plain + ")");
  return *digest;
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

void load_keys(const JsonPath& root, Config& cfg) {
  if (!root.has("keys")) return;
  JsonPath keys = root.at("keys");
  keys.expect_array();
  std::set<std::string> ids;
  for (size_t i = 0; i < keys.size(); ++i) {
    JsonPath k = keys.at(i);
    k.expect_object({"id", "key", "key_sha256", "group", "admin", "routing_policy", "region", "budget", "rpm", "tpm"});
    KeyConfig key;
    key.id = k.string("id");
    if (key.id.empty()) k.at("id").fail("must not be empty");
    if (!ids.insert(key.id).second) k.at("id").fail("duplicate key id '" + key.id + "'");
    key.group = k.string("group", "public");
    key.admin = k.boolean("admin", false);
    key.routing_policy = k.string("routing_policy", "");
    if (!key.routing_policy.empty() && !routing::policy_named(key.routing_policy))
      k.at("routing_policy").fail(std::string("expected one of ") + routing::kPolicyNames);
    key.region = k.string("region", "");
    if (k.has("budget")) key.budget = k.number("budget", 0);
    key.rpm = k.integer("rpm", 0, 100000000, 0);
    key.tpm = k.integer("tpm", 0, 100000000000LL, 0);
    key.key_hash = secret_hash(k, "key", "key_sha256");
    cfg.keys.push_back(std::move(key));
  }
}

std::chrono::milliseconds ms(const JsonPath& p, const char* key, std::chrono::milliseconds d) {
  return std::chrono::milliseconds(p.integer(key, 1, 86400000, d.count()));
}

void load_nodes(const JsonPath& root, Config& cfg) {
  if (root.has("nodes")) {
    JsonPath n = root.at("nodes");
    n.expect_object({"listen", "tls", "heartbeat_interval_ms", "liveness_timeout_ms", "first_chunk_timeout_ms",
                     "max_message_bytes", "queue_limit", "queue_timeout_ms"});
    auto& nc = cfg.nodes;
    if (n.has("listen")) parse_listen(n.string("listen"), cfg.file + ": nodes.listen", nc.host, nc.port);
    if (n.has("tls")) {
      JsonPath tls = n.at("tls");
      tls.expect_object({"cert", "key"});
      nc.tls_cert = resolve_against(cfg.file, tls.string("cert"));
      nc.tls_key = resolve_against(cfg.file, tls.string("key"));
      for (auto [key, path] : {std::pair{"cert", nc.tls_cert}, std::pair{"key", nc.tls_key}})
        if (!std::filesystem::exists(path)) tls.at(key).fail("file not found: " + path);
    }
    if (!nc.host.empty() && nc.tls_cert.empty() && !is_loopback(nc.host))
      n.at("listen").fail("nodes would send orders and answers in plain text off this machine: give nodes.tls "
                          "{cert, key}, or listen on loopback");
    nc.heartbeat_interval = std::chrono::milliseconds(n.integer("heartbeat_interval_ms", 100, 60000, 2000));
    nc.liveness_timeout = std::chrono::milliseconds(
        n.integer("liveness_timeout_ms", 2 * nc.heartbeat_interval.count(), 600000, 3 * nc.heartbeat_interval.count()));
    nc.first_chunk_timeout = std::chrono::milliseconds(n.integer("first_chunk_timeout_ms", 100, 3600000, 60000));
    nc.max_message_bytes = static_cast<std::size_t>(n.integer("max_message_bytes", 65536, 1ll << 30, 16 << 20));
    nc.queue_limit = static_cast<std::size_t>(n.integer("queue_limit", 0, 1000000, 256));
    nc.queue_timeout = std::chrono::milliseconds(n.integer("queue_timeout_ms", 0, 3600000, 10000));
  }
  if (!root.has("node_tokens")) {
    if (!cfg.nodes.host.empty()) root.at("nodes").at("listen").fail("no node could join: add \"node_tokens\"");
    return;
  }
  JsonPath tokens = root.at("node_tokens");
  tokens.expect_array();
  std::set<std::string> ids;
  for (size_t i = 0; i < tokens.size(); ++i) {
    JsonPath t = tokens.at(i);
    t.expect_object({"id", "token", "token_sha256", "groups"});
    NodeTokenConfig token;
    token.id = t.string("id");
    if (token.id.empty()) t.at("id").fail("must not be empty");
    if (!ids.insert(token.id).second) t.at("id").fail("duplicate node token id '" + token.id + "'");
    token.token_hash = secret_hash(t, "token", "token_sha256");
    for (const auto& key : cfg.keys)
      if (key.key_hash == token.token_hash)
        t.fail("this node token is also the API key '" + key.id + "': a node token must never open the API");
    token.groups = t.has("groups") ? string_list(t.at("groups")) : std::vector<std::string>{"public"};
    if (token.groups.empty()) t.at("groups").fail("list at least one group");
    cfg.node_tokens.push_back(std::move(token));
  }
}

void load_deployments(const JsonPath& root, Config& cfg) {
  if (!root.has("deployments")) return;
  JsonPath list = root.at("deployments");
  list.expect_array();
  for (size_t i = 0; i < list.size(); ++i) {
    JsonPath d = list.at(i);
    d.expect_object({"model", "group", "min_nodes"});
    DeploymentConfig dep;
    dep.model = d.string("model");
    if (dep.model.empty()) d.at("model").fail("must not be empty");
    dep.group = d.string("group", "public");
    dep.min_nodes = d.integer("min_nodes", 0, 100000, 1);
    for (const auto& other : cfg.deployments)
      if (other.model == dep.model && other.group == dep.group)
        d.fail("'" + dep.model + "' is already deployed to group '" + dep.group + "'");
    cfg.deployments.push_back(std::move(dep));
  }
}

void load_routing(const JsonPath& root, Config& cfg) {
  if (!root.has("routing")) return;
  JsonPath r = root.at("routing");
  r.expect_object({"policy", "weights", "cold_start_ms", "breaker", "aliases", "prefix_affinity", "auction_max_ttft_ms",
                   "auction_bid_window_ms"});
  auto& rc = cfg.routing;
  json pa = apply_schema(config::prefix_affinity_schema(), section(r, "prefix_affinity"));
  rc.prefix_affinity = pa["enabled"].get<bool>();
  rc.prefix_min_chars = pa["min_chars"].get<std::size_t>();
  rc.prefix_max_load = pa["max_load"].get<double>();
  rc.prefix_slots = pa["slots"].get<std::size_t>();
  rc.policy = r.string("policy", rc.policy);
  if (!routing::policy_named(rc.policy)) r.at("policy").fail(std::string("expected one of ") + routing::kPolicyNames);
  rc.cold_start = std::chrono::milliseconds(r.integer("cold_start_ms", 0, 3600000, rc.cold_start.count()));
  rc.auction_latency_bound = std::chrono::milliseconds(r.integer("auction_max_ttft_ms", 0, 3600000, 0));
  rc.auction_bid_window = std::chrono::milliseconds(r.integer("auction_bid_window_ms", 0, 1000, 5));
  if (r.has("aliases")) {
    JsonPath a = r.at("aliases");
    if (!a.value().is_object()) a.fail("expected an object: {\"alias\": \"model\"}");
    for (const auto& [alias, target] : a.value().items()) {
      if (!target.is_string() || target.get<std::string>().empty()) a.at(alias.c_str()).fail("expected the model's name");
      if (alias.empty()) a.fail("an alias must not be empty");
      rc.aliases.emplace_back(alias, target.get<std::string>());
    }
    for (const auto& [alias, target] : rc.aliases)
      for (const auto& [other, _] : rc.aliases)
        if (other == target) a.at(alias.c_str()).fail("'" + target + "' is itself an alias: aliases do not chain");
  }
  json w = apply_schema(config::weights_schema(), section(r, "weights"));
  rc.weight_ttft = w["ttft"].get<double>();
  rc.weight_load = w["load"].get<double>();
  rc.weight_hot = w["hot"].get<double>();
  rc.weight_price = w["price"].get<double>();
  rc.weight_region = w["region"].get<double>();
  rc.weight_reliability = w["reliability"].get<double>();
  json b = apply_schema(config::breaker_schema(), section(r, "breaker"));
  auto& br = cfg.routing.breaker;
  br.consecutive_failures = b["consecutive_failures"].get<int>();
  br.error_ratio = b["error_ratio"].get<double>();
  br.min_attempts = b["min_attempts"].get<int>();
  br.window = std::chrono::seconds(b["window_s"].get<std::int64_t>());
  br.cooldown = std::chrono::milliseconds(b["cooldown_ms"].get<std::int64_t>());
}

void load_upstreams(const JsonPath& root, Config& cfg) {
  if (!root.has("upstreams")) {
    if (!cfg.nodes.host.empty()) return;  // every model comes from pull nodes
    root.at("upstreams");  // throws: required without a node port
  }
  JsonPath ups = root.at("upstreams");
  ups.expect_array();
  if (ups.size() == 0 && cfg.nodes.host.empty()) ups.fail("at least one upstream is needed (or a node port: nodes.listen)");
  std::set<std::string> names;
  for (size_t i = 0; i < ups.size(); ++i) {
    JsonPath u = ups.at(i);
    u.expect_object({"name", "provider", "url", "api_key", "api_key_env", "models", "group",
                     "groups", "region", "price", "timeouts", "options", "capabilities", "status_interval_s"});
    UpstreamConfig up;
    up.path = u.path();
    up.name = u.string("name");
    if (up.name.empty()) u.at("name").fail("must not be empty");
    if (!names.insert(up.name).second) u.at("name").fail("duplicate upstream name '" + up.name + "'");
    up.provider = u.string("provider");
    up.url = u.string("url", "");
    if (!up.url.empty()) {
      if (!is_http_url(up.url)) u.at("url").fail("expected an http(s) URL");
      while (!up.url.empty() && up.url.back() == '/') up.url.pop_back();
    }
    up.api_key = u.string("api_key", "");
    if (u.has("api_key_env")) {
      std::string var = u.string("api_key_env");
      const char* v = std::getenv(var.c_str());
      if (!v) u.at("api_key_env").fail("environment variable " + var + " is not set");
      up.api_key = v;
    }
    JsonPath models = u.at("models");
    models.expect_array();
    if (models.size() == 0) models.fail("list at least one model");
    for (size_t m = 0; m < models.size(); ++m) {
      JsonPath model = models.at(m);
      ModelRoute route;
      if (model.value().is_string()) {
        route.id = route.upstream_model = model.value().get<std::string>();
      } else {
        model.expect_object({"id", "upstream_model", "embeddings"});
        route.id = model.string("id");
        route.upstream_model = model.string("upstream_model", route.id);
        if (model.has("embeddings")) route.embeddings = model.boolean("embeddings");
      }
      if (route.id.empty()) model.fail("model names must not be empty");
      up.models.push_back(std::move(route));
    }
    if (u.has("group") && u.has("groups")) u.fail("give \"group\" or \"groups\", not both");
    if (u.has("groups")) {
      up.groups = string_list(u.at("groups"));
    } else {
      up.groups.push_back(u.string("group", "public"));
    }
    up.region = u.string("region", "");
    if (u.has("price")) {
      JsonPath p = u.at("price");
      p.expect_object({"input_per_1k", "output_per_1k"});
      up.price.input_per_1k = p.number("input_per_1k", 0, 0.0);
      up.price.output_per_1k = p.number("output_per_1k", 0, 0.0);
    }
    if (u.has("timeouts")) {
      JsonPath t = u.at("timeouts");
      t.expect_object({"connect_ms", "first_byte_ms", "idle_ms"});
      up.connect_timeout = ms(t, "connect_ms", up.connect_timeout);
      up.first_byte_timeout = ms(t, "first_byte_ms", up.first_byte_timeout);
      up.idle_timeout = ms(t, "idle_ms", up.idle_timeout);
    }
    up.status_interval = std::chrono::seconds(u.integer("status_interval_s", 0, 3600, 10));
    if (u.has("capabilities")) {
      JsonPath c = u.at("capabilities");
      c.expect_object({"tools", "vision", "json_mode", "context_length"});
      if (c.has("tools")) up.tools = c.boolean("tools");
      if (c.has("vision")) up.vision = c.boolean("vision");
      if (c.has("json_mode")) up.json_mode = c.boolean("json_mode");
      if (c.has("context_length")) up.context_length = c.integer("context_length", 1, 100000000);
    }
    if (u.has("options")) {
      JsonPath o = u.at("options");
      if (!o.value().is_object()) o.fail("expected an object");
      up.options_json = o.value().dump();
    }
    cfg.upstreams.push_back(std::move(up));
  }
}

void load_plugins(const JsonPath& root, Config& cfg) {
  if (!root.has("plugins")) return;
  JsonPath plugins = root.at("plugins");
  plugins.expect_array();
  std::set<std::string> names;
  for (size_t i = 0; i < plugins.size(); ++i) {
    JsonPath p = plugins.at(i);
    p.expect_object({"name", "type", "path", "enabled", "on_error", "config", "cpu_limit_ms",
                     "memory_limit_mb", "max_pause_ms", "instruction_limit"});
    PluginConfig pc;
    pc.config_file = cfg.file;
    pc.path = p.path();
    pc.name = p.string("name");
    if (pc.name.empty()) p.at("name").fail("must not be empty");
    if (!names.insert(pc.name).second) p.at("name").fail("duplicate plugin name '" + pc.name + "'");
    pc.type = p.string("type");
    if (pc.type != "native" && pc.type != "lua") p.at("type").fail("expected \"native\" or \"lua\"");
    pc.file = resolve_against(cfg.file, p.string("path"));
    pc.enabled = p.boolean("enabled", true);
    std::string on_error = p.string("on_error", "open");
    if (on_error != "open" && on_error != "closed")
      p.at("on_error").fail("expected \"open\" (skip the plugin) or \"closed\" (fail the request)");
    pc.fail_open = on_error == "open";
    if (p.has("config")) {
      JsonPath c = p.at("config");
      if (!c.value().is_object()) c.fail("expected an object");
      pc.config_json = c.value().dump();
    }
    pc.max_pause = ms(p, "max_pause_ms", pc.max_pause);
    if (p.has("instruction_limit"))  // the budget's old key, in instructions: say what replaced it
      p.at("instruction_limit").fail("replaced by cpu_limit_ms: a Lua hook's budget is CPU time now (docs/plugins.md)");
    if (pc.type != "lua" && (p.has("cpu_limit_ms") || p.has("memory_limit_mb")))
      p.fail("cpu_limit_ms and memory_limit_mb apply to Lua plugins only");
    pc.cpu_limit = std::chrono::milliseconds(p.integer("cpu_limit_ms", 1, 60000, pc.cpu_limit.count()));
    pc.memory_limit_bytes =
        static_cast<size_t>(p.integer("memory_limit_mb", 1, 4096, 8)) << 20;
    cfg.plugins.push_back(std::move(pc));
  }
}

void load_log(const JsonPath& root, Config& cfg) {
  json log = apply_schema(config::log_schema(), section(root, "log"));
  cfg.log.level = log["level"].get<std::string>();
  cfg.log.access_log = log["access_log"].get<bool>();
  cfg.log.json = log["format"].get<std::string>() == "json";
}

}  // namespace

void parse_listen(const std::string& value, const std::string& what, std::string& host,
                  std::uint16_t& port) {
  auto colon = value.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == value.size())
    throw ConfigError(what + ": expected HOST:PORT, got '" + value + "'");
  std::string h = value.substr(0, colon);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  char* end = nullptr;
  long p = std::strtol(value.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || p < 0 || p > 65535)
    throw ConfigError(what + ": port must be 0..65535, got '" + value.substr(colon + 1) + "'");
  host = h;
  port = static_cast<std::uint16_t>(p);
}

Config load_config(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ConfigError(file + ": cannot open the file");
  std::stringstream buf;
  buf << in.rdbuf();
  std::string text = buf.str();

  json doc;
  try {
    doc = json::parse(text, nullptr, true, /*ignore_comments=*/true);
  } catch (const json::parse_error& e) {
    size_t line = 1, col = 1;
    for (size_t i = 0; i + 1 < e.byte && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    std::string what = e.what();
    auto pos = what.find("syntax error");
    throw ConfigError(file + ":" + std::to_string(line) + ":" + std::to_string(col) +
                      ": invalid JSON: " + (pos == std::string::npos ? what : what.substr(pos)));
  } catch (const json::exception& e) {  // e.g. a number too large for a double
    throw ConfigError(file + ": invalid JSON: " + e.what());
  }

  Config cfg;
  cfg.file = file;
  JsonPath root(doc, file);
  root.expect_object({"listen", "threads", "tls", "limits", "keys", "upstreams", "nodes", "node_tokens",
                      "deployments", "routing", "plugins", "workers", "ledger", "receipts", "web", "cluster", "providers_dir", "log"});
  if (root.has("providers_dir")) {
    cfg.providers_dir = resolve_against(file, root.string("providers_dir"));
    if (!std::filesystem::is_directory(cfg.providers_dir))
      root.at("providers_dir").fail("not a directory: " + cfg.providers_dir);
  }
  load_server(root, cfg);
  load_keys(root, cfg);
  load_nodes(root, cfg);
  load_deployments(root, cfg);
  load_routing(root, cfg);
  load_upstreams(root, cfg);
  load_plugins(root, cfg);
  load_log(root, cfg);
  return cfg;
}

}  // namespace plexus
