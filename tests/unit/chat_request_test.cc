#include "gateway/chat_request.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace plexus {
namespace {

using nlohmann::json;

Error expect_error(const std::string& body) {
  auto r = parse_chat_request(body);
  EXPECT_TRUE(std::holds_alternative<Error>(r)) << body;
  return std::holds_alternative<Error>(r) ? std::get<Error>(r) : Error{};
}

ParsedChat expect_ok(const std::string& body) {
  auto r = parse_chat_request(body);
  if (auto* e = std::get_if<Error>(&r)) ADD_FAILURE() << e->message;
  return std::get<ParsedChat>(r);
}

TEST(ChatRequest, AcceptsTheFullOpenAIShape) {
  auto c = expect_ok(R"({
    "model": "m", "stream": true, "stream_options": {"include_usage": true},
    "messages": [
      {"role": "developer", "content": "be brief"},
      {"role": "system", "content": "s"},
      {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "data:,"}}]},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "42"}
    ],
    "temperature": 0.2, "top_p": 0.9, "top_k": 40, "repeat_penalty": 1.1, "seed": -3,
    "max_completion_tokens": 50, "stop": ["a", "b"], "n": 1,
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
    "tool_choice": "auto", "response_format": {"type": "json_object"}, "vendor_extra": [1]
  })");
  EXPECT_EQ(c.model, "m");
  EXPECT_TRUE(c.stream);
  EXPECT_TRUE(c.include_usage);
  EXPECT_EQ(c.max_tokens, 50);
  EXPECT_EQ(c.seed, -3);
  EXPECT_EQ(c.stop, (std::vector<std::string>{"a", "b"}));
}

TEST(ChatRequest, NamesTheOffendingField) {
  EXPECT_EQ(expect_error("{").code, "invalid_json");
  EXPECT_EQ(expect_error(R"({"model":"m","messages":[],"x":1e99999})").code, "invalid_json")
      << "found by the fuzzer: an out-of-range number threw past the error path";
  EXPECT_EQ(expect_error("[]").status, 400);
  EXPECT_EQ(expect_error(R"({"messages":[]})").param, "model");
  EXPECT_EQ(expect_error(R"({"model":"m"})").param, "messages");
  EXPECT_EQ(expect_error(R"({"model":"m","messages":[]})").param, "messages");
  EXPECT_EQ(expect_error(R"({"model":"m","messages":[{"role":"user","content":1}]})").param,
            "messages[0].content");
  EXPECT_EQ(expect_error(R"({"model":"m","messages":[{"role":"x","content":"a"}]})").param,
            "messages[0].role");
  EXPECT_EQ(expect_error(R"({"model":"m","messages":[{"role":"tool","content":"a"}]})").param,
            "messages[0].tool_call_id");
  const std::string ok_msgs = R"("messages":[{"role":"user","content":"a"}])";
  auto with = [&](const std::string& extra) { return "{\"model\":\"m\"," + ok_msgs + "," + extra + "}"; };
  EXPECT_EQ(expect_error(with(R"("temperature":3)")).param, "temperature");
  EXPECT_EQ(expect_error(with(R"("top_p":"x")")).param, "top_p");
  EXPECT_EQ(expect_error(with(R"("max_tokens":0)")).param, "max_tokens");
  EXPECT_EQ(expect_error(with(R"("max_tokens":1.5)")).param, "max_tokens");
  EXPECT_EQ(expect_error(with(R"("max_tokens":18446744073709551615)")).param, "max_tokens");
  EXPECT_EQ(expect_error(with(R"("n":3)")).param, "n");
  EXPECT_EQ(expect_error(with(R"("stop":[1])")).param, "stop");
  EXPECT_EQ(expect_error(with(R"("stop":["a","b","c","d","e"])")).param, "stop");
  EXPECT_EQ(expect_error(with(R"("stream":"yes")")).param, "stream");
  EXPECT_EQ(expect_error(with(R"("stream_options":{"include_usage":true})")).param, "stream_options");
  EXPECT_EQ(expect_error(with(R"("tools":[{"type":"function"}])")).param, "tools[0].function.name");
  EXPECT_EQ(expect_error(with(R"("tool_choice":"sometimes")")).param, "tool_choice");
  EXPECT_EQ(expect_error(with(R"("response_format":{"type":"yaml"})")).param, "response_format.type");
  // One value for the router and another for the backend: refused.
  EXPECT_EQ(expect_error(with(R"("model":"other")")).param, "model");
  auto deep = std::string(R"({"model":"m","messages":[{"role":"user","content":"a"}],"x":)") +
              std::string(2000, '[') + std::string(2000, ']') + "}";
  EXPECT_NE(expect_error(deep).message.find("levels deep"), std::string::npos);
}

TEST(ChatRequest, ErrorsNeverEchoThePrompt) {
  auto e = expect_error(R"({"model":"m","messages":[{"role":"user","content":"secret prompt"}],"temperature":9})");
  EXPECT_EQ(e.message.find("secret"), std::string::npos);
  auto j = expect_error(R"({"model":"m","messages":[{"role":"user","content":"secret prompt"}] oops})");
  EXPECT_EQ(j.message.find("secret"), std::string::npos);
}

TEST(ChatRequest, UpstreamBodyRenamesModelForcesUsageAndKeepsEverythingElse) {
  auto c = expect_ok(R"({"model":"public","messages":[{"role":"user","content":"a"}],"stream":true,"x":{"y":1}})");
  ChatRequest r = to_upstream_request(c, "backend-model", "req_1");
  json up = json::parse(r.body);
  EXPECT_EQ(up["model"], "backend-model");
  EXPECT_EQ(up["stream_options"]["include_usage"], true);
  EXPECT_EQ(up["x"]["y"], 1);
  EXPECT_FALSE(r.include_usage) << "the client did not ask";
  // The parsed request is untouched, so a failover attempt starts from the original.
  EXPECT_EQ(json::parse(*c.raw)["model"], "public");
  EXPECT_FALSE(json::parse(*c.raw).contains("stream_options"));

  auto whole = expect_ok(R"({"model":"m","messages":[{"role":"user","content":"a"}]})");
  EXPECT_FALSE(json::parse(to_upstream_request(whole, "m", "r").body).contains("stream_options"));
}

}  // namespace
}  // namespace plexus

namespace plexus {
namespace {

TEST(ChatRequest, BodyIsRelayedByteForByteWhenNothingChanges) {
  const std::string raw = "{ \"model\" : \"m\", \"messages\":[{\"role\":\"user\",\"content\":\"a\"}], \"z\": 1.50 }";
  auto c = std::get<ParsedChat>(parse_chat_request(raw));
  EXPECT_EQ(to_upstream_request(c, "m", "r").body, raw);

  const std::string stream = " {\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}";
  auto s = std::get<ParsedChat>(parse_chat_request(stream));
  auto up = nlohmann::json::parse(to_upstream_request(s, "m", "r").body);
  EXPECT_EQ(up["stream_options"]["include_usage"], true);
  EXPECT_EQ(up["stream"], true);
  EXPECT_EQ(up["messages"][0]["content"], "a");

  const std::string with_opts = "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":false},\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}";
  auto o = std::get<ParsedChat>(parse_chat_request(with_opts));
  EXPECT_EQ(nlohmann::json::parse(to_upstream_request(o, "m", "r").body)["stream_options"]["include_usage"], true);

  // Whether the body has stream_options comes from validation, not from the text: a prompt that
  // mentions it keeps the fast path, and a null one is replaced, never duplicated.
  const std::string mention = "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"what is \\\"stream_options\\\"?\"}]}";
  auto m = std::get<ParsedChat>(parse_chat_request(mention));
  EXPECT_EQ(to_upstream_request(m, "m", "r").body,
            "{\"stream_options\":{\"include_usage\":true}," + mention.substr(1));
  const std::string null_opts = "{\"model\":\"m\",\"stream\":true,\"stream_options\":null,\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}";
  auto n = std::get<ParsedChat>(parse_chat_request(null_opts));
  std::string body = to_upstream_request(n, "m", "r").body;
  EXPECT_EQ(body.find("stream_options"), body.rfind("stream_options")) << body;
  EXPECT_EQ(nlohmann::json::parse(body)["stream_options"]["include_usage"], true);
}

}  // namespace
}  // namespace plexus
