#pragma once
// The router's configuration after validation. Loaded and checked once at start-up
// (load_config); everything downstream trusts these values.
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "routing/live_stats.hpp"

namespace plexus {

// A configuration error. what() names the file and the key path:
//   "examples/plexus.json: upstreams[1].url: expected an http(s) URL"
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using Sha256 = std::array<std::uint8_t, 32>;

struct KeyConfig {
  std::string id;
  Sha256 key_hash{};  // only the hash of a key is ever kept in memory
  std::string group;
  bool admin = false;  // may call the admin endpoints (POST /admin/reload)
  std::string routing_policy;  // overrides routing.policy for this key's requests; empty: no
  std::string region;          // where this key's clients are, for routing; empty: anywhere
  std::optional<double> budget;  // currency; once spent, requests get 402 and streams end
  std::int64_t rpm = 0;          // requests per minute; 0: no limit
  std::int64_t tpm = 0;          // tokens per minute; 0: no limit
  bool from_api = false;         // created through POST /v1/keys (kept in the ledger), not the config
  std::int64_t created_ms = 0;   // API keys: when
};

struct ModelRoute {
  std::string id;              // what clients ask for
  std::string upstream_model;  // what the upstream calls it
  bool embeddings = false;     // an embedding model: served at /v1/embeddings only
};

struct Price {
  double input_per_1k = 0;
  double output_per_1k = 0;
};

struct UpstreamConfig {
  std::string path;  // "upstreams[1]", for error messages
  std::string name;
  std::string provider;
  std::string url;
  std::string api_key;
  std::vector<ModelRoute> models;
  std::vector<std::string> groups;
  std::string region;  // where the backend runs, for routing by the client's region
  Price price;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds first_byte_timeout{60000};
  std::chrono::milliseconds idle_timeout{120000};
  std::string options_json = "{}";  // provider-specific; validated by the provider's factory
  // Operator overrides of what the adapter reports (see plexus::Capabilities).
  std::optional<bool> tools, vision, json_mode;
  std::optional<std::int64_t> context_length;
  std::chrono::seconds status_interval{10};  // how often to ask the backend its status; 0 = never
};

struct ServerConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  int threads = 0;  // event loops; 0: one per core
  std::size_t max_body_bytes = 8u << 20;
  std::size_t max_inflight = 1024;
  std::chrono::milliseconds shutdown_grace{10000};
  std::chrono::seconds max_stream_duration{3600};
  std::chrono::seconds request_timeout{60};    // first byte of a request to its last
  std::chrono::seconds keepalive_timeout{75};  // an idle connection between requests
  std::string tls_cert;
  std::string tls_key;
};

// The ledger of charges (SQLite).
struct LedgerConfig {
  bool enabled = true;
  std::string path;  // resolved against the config file's folder
  std::string postgres;  // set: the ledger on PostgreSQL instead of SQLite
  std::chrono::milliseconds flush{200};
  double fee = 0.1;  // the network's share of node earnings
  bool receipts = true;          // receipts.enabled
  std::string receipt_key_file;  // receipts.key_file, resolved
};

// The worker pool for plugins' CPU-heavy work.
struct WorkersConfig {
  int threads = 0;  // 0: half the cores, at least 1
  std::size_t queue_limit = 64;
};

struct PluginConfig {
  std::string config_file;  // the config file it came from, for error messages
  std::string path;  // "plugins[2]", for error messages
  std::string name;
  std::string type;  // "native" or "lua"
  std::string file;  // resolved against the config file's folder
  bool enabled = true;
  bool fail_open = true;  // on_error "open": a failing hook is skipped; "closed": the request fails
  std::string config_json = "{}";  // as written; checked against the plugin's schema when it loads
  // How long a hook may keep a request paused before the pipeline stops waiting (then: "open"
  // goes on without the plugin, "closed" fails the request with 504).
  std::chrono::milliseconds max_pause{30000};
  // Lua only: the sandbox's limits per hook call and per state.
  std::chrono::milliseconds cpu_limit{10};
  std::size_t memory_limit_bytes = 8u << 20;
  // Lua only: the script, when read_lua_sources read it already (a reload reads each script once,
  // off the loops, which then only compile it); null: the plugin reads `file` itself.
  std::shared_ptr<const std::string> lua_source;
};

// A token a pull node presents on the node port; bound to the groups its nodes may serve.
struct NodeTokenConfig {
  std::string id;
  Sha256 token_hash{};
  std::vector<std::string> groups;
};

// A model the operator wants a group's nodes to offer; nodes that can fetch it do.
struct DeploymentConfig {
  std::string model;
  std::string group;
  std::int64_t min_nodes = 1;
};

// The node port, where pull nodes dial in (docs/node-protocol.md).
struct NodesConfig {
  std::string host;  // empty: no node port
  std::uint16_t port = 0;
  std::string tls_cert;  // both set: TLS on the node port (required off loopback)
  std::string tls_key;
  std::chrono::milliseconds heartbeat_interval{2000};
  std::chrono::milliseconds liveness_timeout{6000};  // silent this long: out of rotation
  std::chrono::milliseconds first_chunk_timeout{60000};  // an order with no answer this long moves on
  std::size_t max_message_bytes = 16u << 20;
  // When every node that could serve a request is busy: requests that may wait per (group,
  // model), and for how long, before a 503.
  std::size_t queue_limit = 256;
  std::chrono::milliseconds queue_timeout{10000};
};

// How requests are matched to nodes (docs/routing.md).
struct RoutingConfig {
  std::string policy = "balanced";
  std::vector<std::pair<std::string, std::string>> aliases;  // a name clients may use -> the model it means
  // balanced's weights: predicted TTFT, load, cold model, price, outside the client's region,
  // recent failures
  double weight_ttft = 1, weight_load = 1, weight_hot = 1, weight_price = 1, weight_region = 1, weight_reliability = 1;
  std::chrono::milliseconds cold_start{15000};  // what "latency" adds for a model not in memory
  std::chrono::milliseconds auction_latency_bound{0};  // "auction": the TTFT a winning bid must meet; 0: none
  std::chrono::milliseconds auction_bid_window{5};     // how long "auction" waits for live bids; 0: none asked
  BreakerSettings breaker;
  // Prefix affinity: a request sharing a prompt prefix of at least min_chars with one served
  // before goes to the node that served it, while that node is below max_load.
  bool prefix_affinity = true;
  std::size_t prefix_min_chars = 1024;
  double prefix_max_load = 0.8;
  std::size_t prefix_slots = 1u << 16;
};

struct LogConfig {
  std::string level = "info";
  bool access_log = true;
  bool json = false;  // log.format "json"
};

struct Config {
  std::string file;  // where it was loaded from
  ServerConfig server;
  std::vector<KeyConfig> keys;  // empty: no authentication, every caller is in group "public"
  std::vector<UpstreamConfig> upstreams;
  NodesConfig nodes;
  std::vector<NodeTokenConfig> node_tokens;
  std::vector<DeploymentConfig> deployments;
  RoutingConfig routing;
  std::vector<PluginConfig> plugins;  // pipeline order
  WorkersConfig workers;
  LedgerConfig ledger;
  std::string web_root;  // web.root, resolved; empty: web/ beside the plexus binary
  struct {
    std::string redis;  // empty: this router alone
    std::string id;     // its name among the routers (its receipt chain)
    std::chrono::milliseconds sync{100};
    std::string node_address;  // "" : nodes.listen's host and the port it got, unless a wildcard
  } cluster;
  std::string providers_dir;  // where adapters are loaded from; empty: "providers" beside the binary
  LogConfig log;
};

// Reads, parses (JSON with // and /* */ comments) and validates a config file.
// Relative paths inside it (TLS files) resolve against the file's folder. Throws ConfigError.
Config load_config(const std::string& file);

// Splits "host:port"; throws ConfigError naming `what` on a malformed value.
void parse_listen(const std::string& value, const std::string& what, std::string& host,
                  std::uint16_t& port);

}  // namespace plexus
