// The exchange's decisions (failover, error events, usage) against scripted providers, on the
// real event loop, without HTTP.
#include "gateway/exchange.hpp"

#include <gtest/gtest.h>

#include <future>
#include <functional>
#include <map>

#include <nlohmann/json.hpp>

#include "gateway/provider_registry.hpp"
#include "upstream/upstream_client.hpp"
#include "nodes/direct_nodes.hpp"
#include "loop/event_loop.hpp"

namespace plexus {
namespace {

// A provider whose behaviour is its upstream's "options": {"steps": [[kind, text, retryable,
// status], ...]} with kind chunk | body | ok | fail. It plays the script synchronously inside
// start(): the hardest case for the exchange.
std::map<std::string, int> g_calls;
std::function<void(const std::string& node)> g_leave;  // step "leave": the node leaves the registry

class ScriptedProvider final : public Provider {
 public:
  ScriptedProvider(std::string name, nlohmann::json steps) : name_(std::move(name)), steps_(std::move(steps)) {}
  std::unique_ptr<ProviderCall> start(const ChatRequest&, ResponseSink& sink) override {
    ++g_calls[name_];
    for (const auto& s : steps_) {
      std::string kind = s[0];
      std::string text = s.size() > 1 ? s[1].get<std::string>() : "";
      if (kind == "leave") g_leave(name_);
      if (kind == "chunk") sink.on_chunk(text);
      if (kind == "body") sink.on_body(text);
      if (kind == "ok") sink.on_finish(Outcome{std::nullopt, false, {3, 4, true}, "stop"});
      if (kind == "fail") {
        Outcome o;
        o.error = Error::upstream(s.size() > 3 ? s[3].get<int>() : 502, text, "scripted");
        o.retryable = s.size() > 2 && s[2].get<bool>();
        sink.on_finish(o);
      }
    }
    struct NoCall : ProviderCall {
      void cancel() override {}
    };
    return std::make_unique<NoCall>();
  }

 private:
  std::string name_;
  nlohmann::json steps_;
};

std::unique_ptr<Provider> make_scripted(const UpstreamSpec& spec, ProviderHost&) {
  return std::make_unique<ScriptedProvider>(spec.name, nlohmann::json::parse(spec.options_json)["steps"]);
}

struct Recorded {
  int status = 0;
  std::string whole;
  std::string streamed;
  Headers headers;
  bool stream_begun = false;
};

class RecordingChannel final : public ClientChannel {
 public:
  explicit RecordingChannel(Recorded& r) : r_(r) {}
  void send_whole(int status, const Headers& h, std::string body) override {
    r_.status = status;
    r_.headers = h;
    r_.whole = std::move(body);
  }
  void begin_stream(const Headers& h) override {
    r_.stream_begun = true;
    r_.status = 200;
    r_.headers = h;
  }
  void send_event(std::string_view chunk_json) override { r_.streamed += "data: " + std::string(chunk_json) + "\n\n"; }
  void end_stream(const std::string* error_json) override {
    if (error_json) r_.streamed += "data: " + *error_json + "\n\n";
    r_.streamed += "data: [DONE]\n\n0\r\n\r\n";
  }

 private:
  Recorded& r_;
};

// `tweak` adjusts the nodes before the request starts; `while_running` runs on the test's
// thread once it has.
struct Options {
  std::string extra_json;  // more request fields, e.g. ,"tools":[...]
  std::function<void(NodeRegistry&)> tweak;
  std::function<void()> while_running;
  std::function<void()> on_logged;  // on the loop, when the access record is written
  std::chrono::milliseconds queue_timeout{10000};
};

class ExchangeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    thread_ = std::thread([this] { loop_.run(); });
    g_calls.clear();
  }
  void TearDown() override {
    loop_.stop();
    thread_.join();
  }

  // Runs one exchange over upstreams {name, steps} serving model "m"; returns what the client
  // saw and the access record.
  // What the access log was handed, kept: the record itself holds views into the exchange.
  struct Logged {
    std::string node;
    int status = 0;
    double ttft_ms = -1;
    Usage usage;
  };

  std::pair<Recorded, Logged> run(std::vector<std::pair<std::string, std::string>> ups, bool stream,
                                        Options options = {}) {
    Config cfg;
    for (auto& [name, steps] : ups) {
      UpstreamConfig u;
      u.name = name;
      u.provider = "scripted";
      u.models = {{"m", "m"}};
      u.groups = {"public"};
      u.options_json = "{\"steps\":" + steps + "}";
      cfg.upstreams.push_back(u);
    }
    ProviderRegistry registry;
    registry.add("scripted", &make_scripted);
    ProviderHost host{http_, loop_};
    NodeRegistry nodes;
    for (auto& node : build_direct_nodes(cfg, registry, {&host})) nodes.add(node);
    if (options.tweak) options.tweak(nodes);
    g_leave = [&](const std::string& id) { nodes.remove(nodes.find(id)); };
    Recorded rec;
    std::promise<Logged> logged;
    ExchangeEnv env{loop_};
    env.access_log = [&](const AccessRecord& r) {
      if (options.on_logged) options.on_logged();
      logged.set_value(Logged{std::string(r.node), r.status, r.ttft_ms, r.usage});
    };
    env.max_stream_duration = std::chrono::seconds(60);
    env.nodes = &nodes;
    env.queue_timeout = options.queue_timeout;
    auto parsed = std::get<ParsedChat>(parse_chat_request(
        std::string(R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream":)") +
        (stream ? "true" : "false") + options.extra_json + "}"));
    std::atomic<bool> released{false};
    loop_.post([&] {
      auto ex = std::make_shared<Exchange>(env, parsed, Caller{"k", "public", "", ""},
                                           std::make_unique<RecordingChannel>(rec), "req_t",
                                           loop_.now(), [&] { released = true; });
      ex->start();
    });
    if (options.while_running) options.while_running();
    auto record = logged.get_future().get();
    for (int i = 0; i < 200 && !released; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_TRUE(released) << "the exchange is freed once done";
    return {rec, record};
  }

  EventLoop loop_;
  UpstreamClient http_{loop_};
  std::thread thread_;
};

TEST_F(ExchangeTest, RetryableFailureBeforeOutputMovesToTheNextUpstream) {
  auto [rec, log] = run({{"a", R"([["fail","down",true]])"}, {"b", R"([["body","{\"ok\":1}"],["ok"]])"}}, false);
  EXPECT_EQ(rec.status, 200);
  // No usage from the backend: the router's estimate, with what it costs (OpenRouter's usage.cost).
  EXPECT_EQ(rec.whole, R"({"ok":1,"usage":{"completion_tokens":4,"cost":0.0,"prompt_tokens":3,"total_tokens":7}})");
  EXPECT_EQ(log.node, "b");
  EXPECT_EQ(log.usage.completion_tokens, 4);
  EXPECT_NE(std::find(rec.headers.begin(), rec.headers.end(), std::pair<std::string, std::string>{"x-plexus-node", "b"}),
            rec.headers.end());
}

TEST_F(ExchangeTest, NonRetryableFailureIsAnsweredAsIs) {
  auto [rec, log] = run({{"a", R"([["fail","bad input",false,400]])"}, {"b", R"([["ok"]])"}}, false);
  EXPECT_EQ(rec.status, 400);
  EXPECT_NE(rec.whole.find("bad input"), std::string::npos);
  EXPECT_EQ(g_calls["b"], 0);
  EXPECT_EQ(log.status, 400);
}

TEST_F(ExchangeTest, AllUpstreamsFailingGivesTheLastError) {
  auto [rec, log] = run({{"a", R"([["fail","first",true,502]])"}, {"b", R"([["fail","second",true,504]])"}}, true);
  EXPECT_FALSE(rec.stream_begun) << "nothing was streamed, so a plain HTTP error";
  EXPECT_EQ(rec.status, 504);
  EXPECT_NE(rec.whole.find("second"), std::string::npos);
}

TEST_F(ExchangeTest, FailureAfterTheFirstChunkEndsTheStreamWithAnErrorEventAndDone) {
  auto [rec, log] = run({{"a", R"([["chunk","{\"n\":1}"],["fail","cut",true]])"}, {"b", R"([["ok"]])"}}, true);
  EXPECT_TRUE(rec.stream_begun);
  EXPECT_EQ(g_calls["b"], 0) << "no failover after output";
  EXPECT_NE(rec.streamed.find("data: {\"n\":1}\n\n"), std::string::npos);
  auto err = rec.streamed.find("data: {\"error\":");
  auto done = rec.streamed.find("data: [DONE]\n\n");
  ASSERT_NE(err, std::string::npos);
  ASSERT_NE(done, std::string::npos);
  EXPECT_LT(err, done);
  EXPECT_EQ(rec.streamed.substr(rec.streamed.size() - 5), "0\r\n\r\n");
}

TEST_F(ExchangeTest, SuccessfulStreamEndsWithDone) {
  auto [rec, log] = run({{"a", R"([["chunk","{\"n\":1}"],["chunk","{\"n\":2}"],["ok"]])"}}, true);
  EXPECT_LT(rec.streamed.find("{\"n\":1}"), rec.streamed.find("{\"n\":2}"));
  EXPECT_EQ(rec.streamed.find("error"), std::string::npos);
  EXPECT_NE(rec.streamed.find("data: [DONE]"), std::string::npos);
  EXPECT_EQ(log.status, 200);
  EXPECT_GE(log.ttft_ms, 0);
}

TEST_F(ExchangeTest, TheNodeThatFailedMayLeaveTheRegistryBeforeTheAnswer) {
  // The node's session ends as its order fails: the registry's new snapshot no longer has it,
  // and the error the client gets still names it (the exchange keeps it alive).
  auto [rec, log] = run({{"a", R"([["leave"],["fail","gone",true]])"}}, false);
  EXPECT_EQ(rec.status, 502);
  EXPECT_NE(std::find(rec.headers.begin(), rec.headers.end(), std::pair<std::string, std::string>{"x-plexus-node", "a"}),
            rec.headers.end());
  EXPECT_EQ(log.node, "a");
}

TEST_F(ExchangeTest, WaitingForABusyNodeLeavesTheLoopFreeWhenTheFreeNodesCannotServe) {
  // "a" is free but cannot do tools; "b" can, and has no capacity: the request waits for "b",
  // on a timer, and the loop goes on serving everything else meanwhile.
  bool answered = false;  // both read and written on the loop
  std::promise<bool> other_work;
  Options options;
  options.extra_json = R"(,"tools":[{"type":"function","function":{"name":"f","parameters":{}}}])";
  options.queue_timeout = std::chrono::milliseconds(400);
  options.tweak = [](NodeRegistry& nodes) {
    auto a = nodes.find("a");
    auto caps = a->models()->front().capabilities;
    caps.tools = false;
    a->set_models({{"m", "m", {}, caps}});
    nodes.find("b")->credit = 0;
    nodes.republish();
  };
  options.while_running = [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    loop_.post([&] { other_work.set_value(!answered); });
  };
  options.on_logged = [&] { answered = true; };
  auto [rec, log] = run({{"a", R"([["ok"]])"}, {"b", R"([["ok"]])"}}, false, options);
  EXPECT_EQ(rec.status, 429);
  EXPECT_NE(rec.whole.find("nodes_busy"), std::string::npos);
  EXPECT_TRUE(other_work.get_future().get()) << "other work ran while the request waited";
  EXPECT_EQ(g_calls["a"], 0);
  EXPECT_EQ(g_calls["b"], 0);
}

TEST_F(ExchangeTest, WaitingLeavesTheLoopFreeWhenTheFreeNodesAreOnesTheRequestExcludes) {
  // The same with "a" able to serve but excluded by the request's own hints.
  bool answered = false;
  std::promise<bool> other_work;
  Options options;
  options.extra_json = R"(,"provider":{"ignore":["a"]})";
  options.queue_timeout = std::chrono::milliseconds(400);
  options.tweak = [](NodeRegistry& nodes) { nodes.find("b")->credit = 0; };
  options.while_running = [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    loop_.post([&] { other_work.set_value(!answered); });
  };
  options.on_logged = [&] { answered = true; };
  auto [rec, log] = run({{"a", R"([["ok"]])"}, {"b", R"([["ok"]])"}}, false, options);
  EXPECT_EQ(rec.status, 429);
  EXPECT_TRUE(other_work.get_future().get()) << "other work ran while the request waited";
  EXPECT_EQ(g_calls["a"], 0);
}

}  // namespace
}  // namespace plexus
