#include "demo/demo_text.hpp"

#include <gtest/gtest.h>

namespace plexus::demo {
namespace {

std::string join(const Generation& g) {
  std::string s;
  for (const auto& t : g.tokens) s += t;
  return s;
}

TEST(DemoText, DeterministicForPromptAndSeed) {
  auto a = generate("hello", std::nullopt, std::nullopt, {}, 60);
  auto b = generate("hello", std::nullopt, std::nullopt, {}, 60);
  auto c = generate("hello!", std::nullopt, std::nullopt, {}, 60);
  EXPECT_EQ(join(a), join(b));
  EXPECT_NE(join(a), join(c));
  EXPECT_EQ(join(generate("x", 7, 20, {}, 60)), join(generate("y", 7, 20, {}, 60)))
      << "a seed fixes the text whatever the prompt";
}

TEST(DemoText, MaxTokensGivesLength) {
  auto g = generate("hello", 1, 3, {}, 60);
  EXPECT_EQ(g.tokens.size(), 3u);
  EXPECT_EQ(g.finish_reason, "length");
  auto natural = generate("hello", 1, std::nullopt, {}, 60);
  EXPECT_EQ(natural.finish_reason, "stop");
  EXPECT_GE(natural.tokens.size(), 8u);
  EXPECT_LE(natural.tokens.size(), 60u);
  EXPECT_EQ(natural.tokens.back(), ".");
}

TEST(DemoText, StopSequencesCutBeforeTheMatchEvenAcrossTokens) {
  auto full = join(generate("p", 11, 40, {}, 60));
  for (size_t at = 1; at + 4 < full.size(); at += 3) {
    std::string stop = full.substr(at, 4);
    auto g = generate("p", 11, 40, {stop}, 60);
    std::string text = join(g);
    ASSERT_EQ(text, full.substr(0, full.find(stop))) << "stop='" << stop << "'";
    ASSERT_EQ(g.finish_reason, "stop");
  }
}

TEST(DemoText, CountsWordsAndPunctuation) {
  EXPECT_EQ(count_tokens(""), 0);
  EXPECT_EQ(count_tokens("Hello, world!"), 4);
  EXPECT_EQ(count_tokens("  two   words "), 2);
}

}  // namespace
}  // namespace plexus::demo
