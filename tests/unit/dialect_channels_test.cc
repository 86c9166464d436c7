// The channels that answer in another API's shape (responses, messages, legacy completions) read
// what nodes send, which is outside input: hostile chunks and answers (fields of the wrong type,
// wrong nesting) never escape as exceptions, and every response still ends.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dialects/completions_channel.hpp"
#include "dialects/messages_channel.hpp"
#include "dialects/responses_channel.hpp"

namespace plexus::dialects {
namespace {

using Make = std::function<std::unique_ptr<ClientChannel>(std::shared_ptr<Responder>)>;

const std::vector<std::pair<const char*, Make>>& channels() {
  static const std::vector<std::pair<const char*, Make>> all = {
      {"responses", [](auto r) { return std::make_unique<ResponsesChannel>(r, nlohmann::json{{"model", "m"}}); }},
      {"messages", [](auto r) { return std::make_unique<MessagesChannel>(r, nlohmann::json{{"model", "m"}}, "req_1"); }},
      {"completions", [](auto r) { return std::make_unique<CompletionsChannel>(r, nlohmann::json{{"model", "m"}}); }},
  };
  return all;
}

const std::vector<std::string> kHostileChunks = {
    R"({"choices":[{"delta":{"content":"fine"}}]})",
    R"({"choices":["not an object"]})",
    R"({"choices":[{"delta":[]}]})",
    R"({"choices":[{"delta":{"content":{"a":1}}}]})",
    R"({"choices":[{"delta":{"tool_calls":{"index":0}}}]})",
    R"({"choices":[{"delta":{"tool_calls":[{"index":"zero","id":5,"function":{"name":7,"arguments":8}}]}}]})",
    R"({"choices":[{"delta":{"tool_calls":[{"index":1,"function":"f"}]}}]})",
    R"({"choices":[{"delta":{"annotations":"x"}}]})",
    R"({"choices":[{"delta":{"annotations":[1,{"type":"url_citation","url_citation":"no"}]}}]})",
    R"({"choices":[{"finish_reason":5,"delta":{}}]})",
    R"({"choices":[],"usage":{"prompt_tokens":"many","completion_tokens":null}})",
    R"({"choices":[],"usage":"none"})",
    R"({"model":17,"choices":[{"delta":{"content":"end"}}]})",
    "not json at all",
    "[]",
};

const std::vector<std::string> kHostileWholes = {
    R"({"choices":[{"message":{"content":"no finish_reason at all"}}]})",
    R"({"choices":[{"message":"text"}]})",
    R"({"choices":["x"],"usage":{"prompt_tokens":"a"}})",
    R"({"choices":[{"message":{"content":5,"tool_calls":[{"function":{"name":1,"arguments":2}}],"annotations":[{"type":"url_citation","url_citation":{"url":3}}]},"finish_reason":[]}],"usage":[]})",
    R"({"choices":{},"model":[]})",
    "not json",
};

TEST(DialectChannels, HostileChunksNeverThrowAndTheStreamStillEnds) {
  for (const auto& [name, make] : channels())
    for (bool failed : {false, true}) {
      auto responder = std::make_shared<Responder>();
      auto channel = make(responder);
      EXPECT_NO_THROW(channel->begin_stream({})) << name;
      for (const auto& chunk : kHostileChunks) EXPECT_NO_THROW(channel->send_event(chunk)) << name << ": " << chunk;
      std::string error = R"({"error":{"message":"cut","type":"upstream_error","param":null,"code":"upstream_truncated"}})";
      EXPECT_NO_THROW(channel->end_stream(failed ? &error : nullptr)) << name;
      EXPECT_TRUE(responder->finished()) << name;
    }
}

TEST(DialectChannels, HostileWholeAnswersNeverThrowAndAreAnswered) {
  for (const auto& [name, make] : channels())
    for (const auto& body : kHostileWholes) {
      auto responder = std::make_shared<Responder>();
      auto channel = make(responder);
      EXPECT_NO_THROW(channel->send_whole(200, {}, body)) << name << ": " << body;
      EXPECT_TRUE(responder->finished()) << name << ": " << body;
    }
}

}  // namespace
}  // namespace plexus::dialects
