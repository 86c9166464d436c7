// The request translators of the APIs served beside chat completions: what a client gets wrong
// is a 400 naming the field, including fields of the wrong type (found by the dialects fuzzer:
// a string "background" or a number "stream" threw past the translation).
#include <gtest/gtest.h>

#include "dialects/completions_request.hpp"
#include "dialects/messages_request.hpp"
#include "dialects/responses_request.hpp"

namespace plexus::dialects {
namespace {

Error error_of(const std::variant<Translated, Error>& v) {
  EXPECT_TRUE(std::holds_alternative<Error>(v));
  return std::holds_alternative<Error>(v) ? std::get<Error>(v) : Error{};
}

TEST(DialectRequests, FlagsOfTheWrongTypeAreA400NamingThem) {
  auto e = error_of(translate_responses_request(R"({"model":"m","input":"x","background":"yes"})"));
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.param, "background");
  e = error_of(translate_messages_request(R"({"model":"m","max_tokens":1,"stream":1,"messages":[{"role":"user","content":"x"}]})"));
  EXPECT_EQ(e.param, "stream");
  e = error_of(translate_completions_request(R"({"model":"m","prompt":"x","echo":"no"})"));
  EXPECT_EQ(e.param, "echo");
}

TEST(DialectRequests, DeeperFieldsOfTheWrongTypeAreA400NotAnException) {
  auto e = error_of(translate_messages_request(
      R"({"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","is_error":"yes"}]}]})"));
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.code, "invalid_type");
}

TEST(DialectRequests, StoredStateIsRefusedByName) {
  EXPECT_EQ(error_of(translate_responses_request(R"({"model":"m","input":"x","previous_response_id":"resp_1"})")).param,
            "previous_response_id");
  EXPECT_EQ(error_of(translate_responses_request(R"({"model":"m","input":[{"type":"item_reference","id":"msg_1"}]})")).param,
            "input[0].type");
}

TEST(DialectRequests, AResponsesRequestBecomesOneChatRequest) {
  auto t = translate_responses_request(
      R"({"model":"m","instructions":"be brief","input":[{"role":"user","content":"hi"},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"ok"}],"max_output_tokens":9,"stream":true})");
  ASSERT_TRUE(std::holds_alternative<Translated>(t));
  auto chat = nlohmann::json::parse(std::get<Translated>(t).chat_body);
  ASSERT_EQ(chat["messages"].size(), 4u);
  EXPECT_EQ(chat["messages"][0]["role"], "system");
  EXPECT_EQ(chat["messages"][2]["tool_calls"][0]["id"], "c");
  EXPECT_EQ(chat["messages"][3]["role"], "tool");
  EXPECT_EQ(chat["max_tokens"], 9);
  EXPECT_EQ(chat["stream_options"]["include_usage"], true);
}

}  // namespace
}  // namespace plexus::dialects
