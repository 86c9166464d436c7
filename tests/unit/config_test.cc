#include "config/config.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "auth/sha256.hpp"

namespace plexus {
namespace {

std::string write_temp(const std::string& text) {
  static int n = 0;
  auto path = std::filesystem::temp_directory_path() /
              ("plexus_config_test_" + std::to_string(::getpid()) + "_" + std::to_string(n++) + ".json");
  std::ofstream(path) << text;
  return path.string();
}

std::string error_of(const std::string& text) {
  std::string file = write_temp(text);
  try {
    load_config(file);
  } catch (const ConfigError& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.rfind(file + ":", 0), 0u) << "names the file: " << msg;
    return msg.substr(file.size());
  }
  ADD_FAILURE() << "accepted: " << text;
  return "";
}

const char* kMinimal = R"({"upstreams":[{"name":"d","provider":"demo","models":["demo"]}]})";

TEST(Config, DefaultsAndComments) {
  Config c = load_config(write_temp(std::string("// comment\n/* block */") + kMinimal));
  EXPECT_EQ(c.server.host, "127.0.0.1");
  EXPECT_EQ(c.server.port, 8080);
  EXPECT_EQ(c.server.max_body_bytes, 8u << 20);
  EXPECT_TRUE(c.keys.empty());
  ASSERT_EQ(c.upstreams.size(), 1u);
  EXPECT_EQ(c.upstreams[0].groups, std::vector<std::string>{"public"});
  EXPECT_EQ(c.upstreams[0].models[0].upstream_model, "demo");
}

TEST(Config, FullFileIsRead) {
  Config c = load_config(write_temp(R"({
    "listen": "0.0.0.0:9000", "threads": 4,
    "limits": {"max_body_bytes": 2048, "max_inflight": 7, "shutdown_grace_ms": 5, "max_stream_duration_s": 60},
    "keys": [{"id": "a", "key": "sk-aaaaaaaa", "group": "g"},
             {"id": "b", "key_sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}],
    "upstreams": [{"name": "u", "provider": "openai", "url": "http://h:1/v1/", "models": [{"id": "x", "upstream_model": "y"}],
                   "groups": ["g", "h"], "price": {"input_per_1k": 0.5, "output_per_1k": 1},
                   "timeouts": {"connect_ms": 1, "first_byte_ms": 2, "idle_ms": 3}, "options": {"headers": {"a": "b"}}}],
    "log": {"level": "warn", "access_log": false}
  })"));
  EXPECT_EQ(c.server.host, "0.0.0.0");
  EXPECT_EQ(c.server.port, 9000);
  EXPECT_EQ(c.server.threads, 4);
  EXPECT_EQ(c.server.max_inflight, 7u);
  EXPECT_EQ(c.keys[0].key_hash, sha256("sk-aaaaaaaa"));
  EXPECT_EQ(c.keys[1].key_hash, sha256("abc"));
  EXPECT_EQ(c.keys[1].group, "public");
  const auto& u = c.upstreams[0];
  EXPECT_EQ(u.url, "http://h:1/v1") << "trailing slash dropped";
  EXPECT_EQ(u.models[0].upstream_model, "y");
  EXPECT_EQ(u.groups.size(), 2u);
  EXPECT_EQ(u.price.output_per_1k, 1.0);
  EXPECT_EQ(u.idle_timeout.count(), 3);
  EXPECT_EQ(u.options_json, R"({"headers":{"a":"b"}})");
  EXPECT_FALSE(c.log.access_log);
}

TEST(Config, NodePortAndTokens) {
  auto c = load_config(write_temp(R"({"keys":[{"id":"k","key":"sk-aaaaaaaa"}],
    "nodes":{"listen":"127.0.0.1:7070","heartbeat_interval_ms":500},
    "node_tokens":[{"id":"gpu1","token":"nt-bbbbbbbb","groups":["lab","public"]},{"id":"gpu2","token":"nt-cccccccc"}]})"));
  EXPECT_EQ(c.nodes.port, 7070);
  EXPECT_EQ(c.nodes.heartbeat_interval.count(), 500);
  EXPECT_EQ(c.nodes.liveness_timeout.count(), 1500) << "three missed heartbeats by default";
  EXPECT_TRUE(c.upstreams.empty()) << "upstreams are optional with a node port";
  ASSERT_EQ(c.node_tokens.size(), 2u);
  EXPECT_EQ(c.node_tokens[0].token_hash, sha256("nt-bbbbbbbb"));
  EXPECT_EQ(c.node_tokens[0].groups, (std::vector<std::string>{"lab", "public"}));
  EXPECT_EQ(c.node_tokens[1].groups, std::vector<std::string>{"public"});
}

TEST(Config, Deployments) {
  auto c = load_config(write_temp(R"({"nodes":{"listen":"127.0.0.1:1"},"node_tokens":[{"id":"n","token":"nt-bbbbbbbb"}],
    "deployments":[{"model":"qwen2.5:7b","group":"lab","min_nodes":2},{"model":"llama3.2"}]})"));
  ASSERT_EQ(c.deployments.size(), 2u);
  EXPECT_EQ(c.deployments[0].group, "lab");
  EXPECT_EQ(c.deployments[0].min_nodes, 2);
  EXPECT_EQ(c.deployments[1].group, "public");
  EXPECT_EQ(error_of(R"({"nodes":{"listen":"127.0.0.1:1"},"node_tokens":[{"id":"n","token":"nt-bbbbbbbb"}],
    "deployments":[{"model":"a"},{"model":"a","group":"public"}]})"), ": deployments[1]: 'a' is already deployed to group 'public'");
}

TEST(Config, Routing) {
  auto c = load_config(write_temp(R"({"upstreams":[{"name":"d","provider":"demo","models":["demo"]}],
    "keys":[{"id":"k","key":"sk-aaaaaaaa","routing_policy":"price","region":"eu-west"}],
    "routing":{"policy":"latency","cold_start_ms":20000,"weights":{"price":3},
               "breaker":{"consecutive_failures":2,"cooldown_ms":500}}})"));
  EXPECT_EQ(c.routing.policy, "latency");
  EXPECT_EQ(c.routing.cold_start.count(), 20000);
  EXPECT_EQ(c.routing.weight_price, 3);
  EXPECT_EQ(c.routing.weight_ttft, 1);
  EXPECT_EQ(c.routing.breaker.consecutive_failures, 2);
  EXPECT_EQ(c.routing.breaker.cooldown.count(), 500);
  EXPECT_EQ(c.keys[0].routing_policy, "price");
  EXPECT_EQ(c.keys[0].region, "eu-west");
  EXPECT_EQ(error_of(R"({"upstreams":[{"name":"d","provider":"demo","models":["demo"]}],"routing":{"aliases":{"a":"b","b":"c"}}})"),
            ": routing.aliases.a: 'b' is itself an alias: aliases do not chain");
  EXPECT_EQ(error_of(R"({"upstreams":[{"name":"d","provider":"demo","models":["demo"]}],"routing":{"policy":"fastest"}})"),
            ": routing.policy: expected one of balanced, latency, price, throughput, least_loaded, round_robin, auction");
  EXPECT_EQ(error_of(R"({"upstreams":[{"name":"d","provider":"demo","models":["demo"]}],"keys":[{"id":"k","key":"sk-aaaaaaaa","routing_policy":"x"}]})"),
            ": keys[0].routing_policy: expected one of balanced, latency, price, throughput, least_loaded, round_robin, auction");
}

TEST(Config, NodeErrorsNameTheKeyPath) {
  EXPECT_EQ(error_of(R"({"nodes":{"listen":"127.0.0.1:7070"}})"), ": nodes.listen: no node could join: add \"node_tokens\"");
  EXPECT_EQ(error_of(R"({"nodes":{"listen":"0.0.0.0:7070"},"node_tokens":[{"id":"n","token":"nt-bbbbbbbb"}]})"),
            ": nodes.listen: nodes would send orders and answers in plain text off this machine: give nodes.tls {cert, key}, or listen on loopback");
  EXPECT_EQ(error_of(R"({"keys":[{"id":"k","key":"same-secret"}],"nodes":{"listen":"127.0.0.1:1"},"node_tokens":[{"id":"n","token":"same-secret"}]})"),
            ": node_tokens[0]: this node token is also the API key 'k': a node token must never open the API");
  EXPECT_EQ(error_of(R"({"nodes":{"listen":"127.0.0.1:1"},"node_tokens":[{"id":"n","token":"nt-bbbbbbbb","groups":[]}]})"),
            ": node_tokens[0].groups: list at least one group");
  EXPECT_EQ(error_of(R"({"nodes":{"listen":"127.0.0.1:1","liveness_timeout_ms":1000},"node_tokens":[{"id":"n","token_sha256":"zz"}]})"),
            ": nodes.liveness_timeout_ms: expected an integer from 4000 to 600000");
  EXPECT_EQ(error_of(R"({"nodes":{"listen":"127.0.0.1:1"},"node_tokens":[{"id":"n","token_sha256":"zz"}]})"),
            ": node_tokens[0].token_sha256: expected 64 hex digits (sha256sum of the token)");
}

TEST(Config, ErrorsNameTheKeyPath) {
  EXPECT_EQ(error_of(R"({"upstreams":[{"name":"a","provider":"demo","models":["m"]},{"name":"b","provider":"openai","url":"localhost:1","models":["m"]}]})"),
            ": upstreams[1].url: expected an http(s) URL");
  EXPECT_NE(error_of(R"({"bogus":1})").find(": bogus: unknown key; allowed keys are: listen, threads, tls, limits, keys, upstreams, nodes, node_tokens, deployments, routing, plugins, workers, ledger, receipts, web, cluster, providers_dir, log"), std::string::npos);
  EXPECT_EQ(error_of(R"({"upstreams":[{"name":"a","provider":"demo","models":["m"]},{"name":"a","provider":"demo","models":["m"]}]})"),
            ": upstreams[1].name: duplicate upstream name 'a'");
  EXPECT_EQ(error_of(R"({"upstreams":[{"name":"a","provider":"demo","models":[]}]})"),
            ": upstreams[0].models: list at least one model");
  EXPECT_EQ(error_of(R"({"listen":"nope","upstreams":[]})"), ": listen: expected HOST:PORT, got 'nope'");
  EXPECT_EQ(error_of(R"({"threads":-1,"upstreams":[]})"), ": threads: expected an integer from 0 to 256");
  EXPECT_EQ(error_of(R"({"keys":[{"id":"k"}],"upstreams":[]})"), ": keys[0]: give exactly one of \"key\" or \"key_sha256\"");
  EXPECT_EQ(error_of(R"({"keys":[{"id":"k","key":"short"}],"upstreams":[]})"), ": keys[0].key: too short: use at least 8 characters");
  EXPECT_EQ(error_of(R"({"upstreams":[{"name":"a","provider":"demo","models":["m"],"timeouts":{"idle_ms":-1}}]})"),
            ": upstreams[0].timeouts.idle_ms: expected an integer from 1 to 86400000");
  EXPECT_EQ(error_of(R"({"log":{"level":"loud"},"upstreams":[{"name":"a","provider":"demo","models":["m"]}]})"), ": log.level: expected one of \"trace\", \"debug\", \"info\", \"warn\", \"error\", \"off\"");
  EXPECT_EQ(error_of("{\n\"upstreams\": [\n  }\n"), ":3:3: invalid JSON: syntax error while parsing value - unexpected '}'; expected '[', '{', or a literal");
}

TEST(Config, AnOutOfRangeNumberIsAConfigError) {
  EXPECT_NE(error_of(R"({"threads": 1e99999, "upstreams": []})").find("invalid JSON"), std::string::npos);
}

TEST(Config, ApiKeyFromTheEnvironment) {
  ::setenv("PLEXUS_TEST_KEY", "from-env", 1);
  Config c = load_config(write_temp(R"({"upstreams":[{"name":"u","provider":"openai","url":"http://h/v1","models":["m"],"api_key_env":"PLEXUS_TEST_KEY"}]})"));
  EXPECT_EQ(c.upstreams[0].api_key, "from-env");
  EXPECT_EQ(error_of(R"({"upstreams":[{"name":"u","provider":"openai","url":"http://h/v1","models":["m"],"api_key_env":"PLEXUS_NOT_SET_ANYWHERE"}]})"),
            ": upstreams[0].api_key_env: environment variable PLEXUS_NOT_SET_ANYWHERE is not set");
}

}  // namespace
}  // namespace plexus
