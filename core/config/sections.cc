#include "config/sections.hpp"

namespace plexus::config {

const ConfigSchema& limits_schema() {
  static const ConfigSchema s = {
      field::integer("max_body_bytes", 8 << 20, "Largest request body; larger gets 413").range(1024, 1ll << 30),
      field::integer("max_inflight", 1024, "Requests in flight at once; more get 429").range(1, 1000000),
      field::integer("shutdown_grace_ms", 10000, "How long a stop waits for streams in flight").range(0, 3600000),
      field::integer("max_stream_duration_s", 3600, "Longest a request may take, first byte to last").range(10, 7 * 86400),
      field::integer("request_timeout_s", 60, "Longest a client may take to send its request").range(1, 3600),
      field::integer("keepalive_timeout_s", 75, "How long an idle keep-alive connection stays open").range(1, 3600),
  };
  return s;
}

const ConfigSchema& workers_schema() {
  static const ConfigSchema s = {
      field::integer("threads", 0, "Worker threads for plugins' CPU-heavy work (PDF extraction); 0: half the cores, at least 1")
          .range(0, 256),
      field::integer("queue_limit", 64, "Jobs waiting for a worker; more are refused with 503").range(1, 100000),
  };
  return s;
}

const ConfigSchema& log_schema() {
  static const ConfigSchema s = {
      field::string("level", "info", "Least severe level logged").one_of({"trace", "debug", "info", "warn", "error", "off"}),
      field::boolean("access_log", true, "One line per request: ids, sizes and timings, never prompt text"),
      field::string("format", "text", "text for people, json for machines (one object per line)").one_of({"text", "json"}),
  };
  return s;
}

const ConfigSchema& weights_schema() {
  static const ConfigSchema s = {
      field::number("ttft", 1, "balanced: weight of the predicted time to first token").at_least(0),
      field::number("load", 1, "balanced: weight of in flight for the capacity").at_least(0),
      field::number("hot", 1, "balanced: weight against a model not loaded in memory").at_least(0),
      field::number("price", 1, "balanced: weight of the price").at_least(0),
      field::number("region", 1, "balanced: weight against a node outside the client's region").at_least(0),
      field::number("reliability", 1, "balanced: weight of the recent error ratio").at_least(0),
  };
  return s;
}

const ConfigSchema& breaker_schema() {
  static const ConfigSchema s = {
      field::integer("consecutive_failures", 5, "Failures in a row that open a (node, model)'s breaker").range(1, 1000),
      field::number("error_ratio", 0.5, "Or this share of failed attempts in the window").range(0.01, 1),
      field::integer("min_attempts", 20, "Attempts in the window before the ratio counts").range(1, 1000000),
      field::integer("window_s", 30, "The window the error ratio is measured over").range(1, 3600),
      field::integer("cooldown_ms", 10000, "How long an open breaker waits before one probe request").range(100, 3600000),
  };
  return s;
}

const ConfigSchema& prefix_affinity_schema() {
  static const ConfigSchema s = {
      field::boolean("enabled", true, "Send requests sharing a long prompt prefix to the node that served it last"),
      field::integer("min_chars", 1024, "Shortest prefix that counts").range(1, 100000000),
      field::number("max_load", 0.8, "Above this share of its capacity a node stops attracting its prefixes").range(0.01, 1),
      field::integer("slots", 1 << 16, "Prefixes remembered (a fixed-size table)").range(16, 1 << 26),
  };
  return s;
}

const ConfigSchema& ledger_schema() {
  static const ConfigSchema s = {
      field::boolean("enabled", true, "Record every request's charge (off: usage, earnings and receipts by id are unavailable)"),
      field::string("path", "plexus-ledger.sqlite", "The SQLite file of the ledger (beside the config file unless absolute)"),
      field::string("postgres", "", "A PostgreSQL connection string (postgresql://user:password@host/db): the ledger there instead of SQLite, shared by several routers"),
      field::integer("flush_ms", 200, "How often queued charges are committed: what a crash can lose at most").range(10, 60000),
      field::number("fee", 0.1, "The network's share of what a node earns").range(0, 1),
  };
  return s;
}

const ConfigSchema& receipts_schema() {
  static const ConfigSchema s = {
      field::boolean("enabled", true, "Sign a receipt for every request"),
      field::string("key_file", "plexus-receipts.key",
                    "The Ed25519 key that signs receipts, PEM (beside the config file unless absolute; made on first start, mode 0600)"),
  };
  return s;
}

const ConfigSchema& web_schema() {
  static const ConfigSchema s = {
      field::string("root", "",
                    "The folder of the router's web pages and their scripts (beside the config file unless absolute; "
                    "empty: web/ beside the plexus binary, where the build puts them)"),
  };
  return s;
}

const ConfigSchema& cluster_schema() {
  static const ConfigSchema s = {
      field::string("redis", "", "Redis shared by several routers (redis://HOST:PORT): keys' rate limits and budgets hold across them; empty: this router alone"),
      field::string("id", "", "This router's name among them (its receipts' chain in a shared ledger); required with redis"),
      field::integer("sync_ms", 100, "How often counts go to Redis and come back: how far a limit can be overrun across routers").range(10, 10000),
      field::string("node_address", "", "This router's node port as nodes reach it (HOST:PORT), told to nodes that join the other routers; empty: nodes.listen when it is a specific address"),
  };
  return s;
}

std::vector<std::pair<std::string, const ConfigSchema*>> declared_sections() {
  return {{"limits", &limits_schema()},
          {"workers", &workers_schema()},
          {"ledger", &ledger_schema()},
          {"receipts", &receipts_schema()},
          {"web", &web_schema()},
          {"cluster", &cluster_schema()},
          {"routing.weights", &weights_schema()},
          {"routing.breaker", &breaker_schema()},
          {"routing.prefix_affinity", &prefix_affinity_schema()},
          {"log", &log_schema()}};
}

}  // namespace plexus::config
