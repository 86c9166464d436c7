#include "common/sse_parser.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace plexus {
namespace {

struct Collected {
  std::vector<std::pair<std::string, std::string>> events;
  SseParser::OnEvent sink() {
    return [this](std::string_view e, std::string_view d) { events.emplace_back(e, d); };
  }
};

const std::string kRecorded =
    "data: {\"id\":\"a\",\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"
    ": keep-alive comment\n\n"
    "data: {\"id\":\"a\",\"choices\":[{\"delta\":{\"content\":\"lo \\u00e9\"}}]}\r\n\r\n"
    "event: ping\ndata: x\n\n"
    "data: line one\ndata: line two\n\n"
    "data:no-space\r\rdata: [DONE]\n\n";

std::vector<std::pair<std::string, std::string>> whole_parse(const std::string& s) {
  Collected c;
  SseParser p;
  EXPECT_TRUE(p.feed(s, c.sink()));
  return c.events;
}

TEST(SseParser, ParsesEventsCommentsMultiLineDataAndAllLineEndings) {
  auto events = whole_parse(kRecorded);
  ASSERT_EQ(events.size(), 6u);
  EXPECT_EQ(events[0].second, R"({"id":"a","choices":[{"delta":{"content":"Hel"}}]})");
  EXPECT_EQ(events[1].first, "message");
  EXPECT_EQ(events[2].first, "ping");
  EXPECT_EQ(events[3].second, "line one\nline two");
  EXPECT_EQ(events[4].second, "no-space");
  EXPECT_EQ(events[5].second, "[DONE]");
}

TEST(SseParser, LlamaCppErrorLineIsAnErrorEvent) {
  auto events = whole_parse("data: {\"n\":1}\n\nerror: {\"code\":500,\"message\":\"out of KV cache\"}\n\n");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].first, "message");
  EXPECT_EQ(events[1].first, "error");
  EXPECT_EQ(events[1].second, R"({"code":500,"message":"out of KV cache"})");
}

TEST(SseParser, EverySplitPointGivesTheSameEvents) {
  auto expected = whole_parse(kRecorded);
  for (size_t cut = 0; cut <= kRecorded.size(); ++cut) {
    Collected c;
    SseParser p;
    ASSERT_TRUE(p.feed(std::string_view(kRecorded).substr(0, cut), c.sink()));
    ASSERT_TRUE(p.feed(std::string_view(kRecorded).substr(cut), c.sink()));
    ASSERT_EQ(c.events, expected) << "split at byte " << cut;
  }
}

TEST(SseParser, RandomSplitsAndByteAtATimeGiveTheSameEvents) {
  auto expected = whole_parse(kRecorded);
  std::mt19937 rng(1234);
  for (int round = 0; round < 200; ++round) {
    Collected c;
    SseParser p;
    size_t at = 0;
    while (at < kRecorded.size()) {
      size_t n = 1 + rng() % 7;
      ASSERT_TRUE(p.feed(std::string_view(kRecorded).substr(at, n), c.sink()));
      at += n;
    }
    ASSERT_EQ(c.events, expected);
  }
}

TEST(SseParser, ReportsAPartialEventAtTheCut) {
  Collected c;
  SseParser p;
  p.feed("data: {\"half", c.sink());
  EXPECT_TRUE(p.has_partial_event());
  EXPECT_TRUE(c.events.empty());
  p.feed("\"}\n\n", c.sink());
  EXPECT_FALSE(p.has_partial_event());
  EXPECT_EQ(c.events.size(), 1u);
}

TEST(SseParser, RefusesAnOversizedEvent) {
  Collected c;
  SseParser p(64);
  EXPECT_FALSE(p.feed("data: " + std::string(100, 'x'), c.sink()));
}

}  // namespace
}  // namespace plexus
