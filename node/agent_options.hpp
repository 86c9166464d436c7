#pragma once
// plexus-node's settings: from the command line, or from a JSON file (--config) with the same
// keys; the command line wins where both give one.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace plexus::node {

struct AgentOptions {
  std::string router;        // HOST:PORT of the router's node port (a comma-separated list: several)
  std::string token;         // the node token
  bool tls = false;          // TLS to the router (system roots, or tls_ca)
  std::string tls_ca;        // PEM file of the CA that signed the router's certificate
  std::string backend;       // the backend's base URL, "demo", or empty: find it on loopback
  std::string provider;      // the adapter; empty: the one that fits what was found
  std::string backend_options = "{}";  // the adapter's options (JSON object)
  std::string api_key;       // for the backend, if it wants one
  std::vector<std::string> models;  // serve only these (empty: all the backend has)
  std::vector<std::string> embedding_models;  // of those, the embedding models (/v1/embeddings only)
  std::string name;          // default: the host name
  std::string region;
  double price_in = 0;       // per 1K prompt tokens
  double price_out = 0;      // per 1K completion tokens
  int max_concurrency = 4;
  std::vector<std::string> probe_urls;  // where to look for a backend (default: the usual ports)
  std::string providers_dir;            // default: "providers" beside the binary
  std::chrono::seconds drain_grace{30};
  std::string log_level = "info";
  bool detect_only = false;  // say what would be served (JSON on stdout) and exit
  bool live_bids = false;    // answer the router's auctions: half price when idle, full when busy
};

// What parsing decided: run with the options, or exit with `exit_code` after printing `message`
// (to stdout for --help and --version, else to stderr).
struct ParsedOptions {
  AgentOptions options;
  bool exit = false;
  int exit_code = 0;
  std::string message;
};

ParsedOptions parse_options(int argc, const char* const* argv);

extern const char* const kAgentUsage;

// "a,b,,c" as {"a", "b", "c"}.
std::vector<std::string> split_list(const std::string& text);

}  // namespace plexus::node
