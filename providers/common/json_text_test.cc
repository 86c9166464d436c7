// A member added to an answer's "usage" object in its text, without building a document.
#include "common/json_text.hpp"

#include <gtest/gtest.h>

namespace plexus {
namespace {

std::string with_cost(std::string text) {
  auto end = usage_object_end(text);
  if (!end) return "-";
  insert_member(text, *end, "cost", "0.25");
  return text;
}

TEST(UsageMember, IsAddedToTheTopLevelUsageObjectInPlace) {
  EXPECT_EQ(with_cost(R"({"id":"x","usage":{"prompt_tokens":3,"completion_tokens":4},"z":1})"),
            R"({"id":"x","usage":{"prompt_tokens":3,"completion_tokens":4,"cost":0.25},"z":1})");
  EXPECT_EQ(with_cost(R"({"usage":{}})"), R"({"usage":{"cost":0.25}})");
  EXPECT_EQ(with_cost("{ \"usage\" : { \"a\" : 1 \n } }"), "{ \"usage\" : { \"a\" : 1 \n ,\"cost\":0.25} }");
  EXPECT_EQ(with_cost(R"({"choices":[{"usage":{}}],"us\u0061ge":{"a":1}})"), R"({"choices":[{"usage":{}}],"us\u0061ge":{"a":1,"cost":0.25}})")
      << "only the top level counts; keys are compared unescaped";
}

TEST(UsageMember, AnythingElseIsLeftToADocument) {
  EXPECT_EQ(with_cost(R"({"id":"x"})"), "-");
  EXPECT_EQ(with_cost(R"({"usage":null})"), "-");
  EXPECT_EQ(with_cost(R"({"usage":{"a":1},"usage":{"b":2}})"), "-") << "a duplicate key is ambiguous";
  EXPECT_EQ(with_cost(R"([{"usage":{}}])"), "-");
  EXPECT_EQ(with_cost("not json"), "-");
  EXPECT_EQ(with_cost(R"({"usage":{"prompt_tokens":1,"cost":0.5}})"), "-") << "never a second cost";
}

}  // namespace
}  // namespace plexus
