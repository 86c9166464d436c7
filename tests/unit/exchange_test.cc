// The exchange's decisions (failover, error events, usage) against scripted providers, on the
// real upstream loop, without HTTP.
#include "gateway/exchange.hpp"

#include <gtest/gtest.h>

#include <future>

#include "loop/upstream_loop.hpp"

namespace plexus {
namespace {

struct Step {
  enum Kind { kChunk, kBody, kOk, kFail } kind;
  std::string text;
  bool retryable = false;
  int status = 502;
};

// Plays a script, synchronously inside start(): the hardest case for the exchange.
class ScriptedProvider final : public Provider {
 public:
  explicit ScriptedProvider(std::vector<Step> steps) : steps_(std::move(steps)) {}
  int calls = 0;
  std::unique_ptr<ProviderCall> start(const ChatRequest&, ResponseSink& sink) override {
    ++calls;
    for (const auto& s : steps_) {
      if (s.kind == Step::kChunk) sink.on_chunk(s.text);
      if (s.kind == Step::kBody) sink.on_body(s.text);
      if (s.kind == Step::kOk) sink.on_finish(Outcome{std::nullopt, false, {3, 4, true}, "stop"});
      if (s.kind == Step::kFail) {
        Outcome o;
        o.error = Error::upstream(s.status, s.text, "scripted");
        o.retryable = s.retryable;
        sink.on_finish(o);
      }
    }
    struct NoCall : ProviderCall {
      void cancel() override {}
    };
    return std::make_unique<NoCall>();
  }

 private:
  std::vector<Step> steps_;
};

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
  void send_chunks(std::string framed) override { r_.streamed += framed; }

 private:
  Recorded& r_;
};

class ExchangeTest : public ::testing::Test {
 protected:
  void SetUp() override { loop_.start(); }
  void TearDown() override { loop_.stop(); }

  Upstream make_upstream(const std::string& name, std::vector<Step> steps) {
    Upstream u;
    u.config.name = name;
    u.provider = std::make_unique<ScriptedProvider>(std::move(steps));
    return u;
  }

  // Runs one exchange to its end; returns what the client saw and the access record.
  std::pair<Recorded, AccessRecord> run(std::vector<Upstream*> ups, bool stream) {
    Recorded rec;
    std::promise<AccessRecord> logged;
    ExchangeEnv env{loop_, [&](const AccessRecord& r) { logged.set_value(r); }, std::chrono::seconds(60)};
    auto parsed = std::get<ParsedChat>(parse_chat_request(
        std::string(R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream":)") +
        (stream ? "true" : "false") + "}"));
    std::vector<Candidate> cands;
    for (auto* u : ups) cands.push_back({u, "m"});
    std::atomic<bool> released{false};
    loop_.post([&] {
      auto ex = std::make_shared<Exchange>(env, parsed, Caller{"k", "public"}, cands,
                                           std::make_unique<RecordingChannel>(rec), "req_t",
                                           Exchange::Clock::now(), [&] { released = true; });
      ex->start();
    });
    auto record = logged.get_future().get();
    for (int i = 0; i < 200 && !released; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_TRUE(released) << "the exchange is freed once done";
    return {rec, record};
  }

  UpstreamLoop loop_;
};

TEST_F(ExchangeTest, RetryableFailureBeforeOutputMovesToTheNextUpstream) {
  auto a = make_upstream("a", {{Step::kFail, "down", true}});
  auto b = make_upstream("b", {{Step::kBody, R"({"ok":1})"}, {Step::kOk}});
  auto [rec, log] = run({&a, &b}, false);
  EXPECT_EQ(rec.status, 200);
  EXPECT_EQ(rec.whole, R"({"ok":1})");
  EXPECT_EQ(log.node, "b");
  EXPECT_EQ(log.usage.completion_tokens, 4);
  EXPECT_NE(std::find(rec.headers.begin(), rec.headers.end(), std::pair<std::string, std::string>{"x-plexus-node", "b"}),
            rec.headers.end());
}

TEST_F(ExchangeTest, NonRetryableFailureIsAnsweredAsIs) {
  auto a = make_upstream("a", {{Step::kFail, "bad input", false, 400}});
  auto b = make_upstream("b", {{Step::kOk}});
  auto [rec, log] = run({&a, &b}, false);
  EXPECT_EQ(rec.status, 400);
  EXPECT_NE(rec.whole.find("bad input"), std::string::npos);
  EXPECT_EQ(static_cast<ScriptedProvider&>(*b.provider).calls, 0);
  EXPECT_EQ(log.status, 400);
}

TEST_F(ExchangeTest, AllUpstreamsFailingGivesTheLastError) {
  auto a = make_upstream("a", {{Step::kFail, "first", true, 502}});
  auto b = make_upstream("b", {{Step::kFail, "second", true, 504}});
  auto [rec, log] = run({&a, &b}, true);
  EXPECT_FALSE(rec.stream_begun) << "nothing was streamed, so a plain HTTP error";
  EXPECT_EQ(rec.status, 504);
  EXPECT_NE(rec.whole.find("second"), std::string::npos);
}

TEST_F(ExchangeTest, FailureAfterTheFirstChunkEndsTheStreamWithAnErrorEventAndDone) {
  auto a = make_upstream("a", {{Step::kChunk, R"({"n":1})"}, {Step::kFail, "cut", true}});
  auto b = make_upstream("b", {{Step::kOk}});
  auto [rec, log] = run({&a, &b}, true);
  EXPECT_TRUE(rec.stream_begun);
  EXPECT_EQ(static_cast<ScriptedProvider&>(*b.provider).calls, 0) << "no failover after output";
  EXPECT_NE(rec.streamed.find("data: {\"n\":1}\n\n"), std::string::npos);
  auto err = rec.streamed.find("data: {\"error\":");
  auto done = rec.streamed.find("data: [DONE]\n\n");
  ASSERT_NE(err, std::string::npos);
  ASSERT_NE(done, std::string::npos);
  EXPECT_LT(err, done);
  EXPECT_EQ(rec.streamed.substr(rec.streamed.size() - 5), "0\r\n\r\n");
}

TEST_F(ExchangeTest, SuccessfulStreamEndsWithDone) {
  auto a = make_upstream("a", {{Step::kChunk, R"({"n":1})"}, {Step::kChunk, R"({"n":2})"}, {Step::kOk}});
  auto [rec, log] = run({&a}, true);
  EXPECT_LT(rec.streamed.find("{\"n\":1}"), rec.streamed.find("{\"n\":2}"));
  EXPECT_EQ(rec.streamed.find("error"), std::string::npos);
  EXPECT_NE(rec.streamed.find("data: [DONE]"), std::string::npos);
  EXPECT_EQ(log.status, 200);
  EXPECT_GE(log.ttft_ms, 0);
}

}  // namespace
}  // namespace plexus
