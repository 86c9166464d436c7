#include "common/line_splitter.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace plexus {
namespace {

// A recorded Ollama stream, CRLF and blank lines included.
const std::string kRecorded =
    "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\"He\\nllo\"},\"done\":false}\n"
    "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\" \\u00e9\"},\"done\":false}\r\n"
    "\n"
    "{\"model\":\"llama3.2\",\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":26,\"eval_count\":2}\n";

std::vector<std::string> lines_of(const std::vector<std::string_view>& pieces) {
  std::vector<std::string> out;
  LineSplitter s;
  for (auto p : pieces) EXPECT_TRUE(s.feed(p, [&](std::string_view l) { out.emplace_back(l); }));
  EXPECT_FALSE(s.has_partial_line());
  return out;
}

TEST(LineSplitter, SplitsLinesDropsCrAndBlankLines) {
  auto lines = lines_of({kRecorded});
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1].back(), '}');
  EXPECT_NE(lines[2].find("\"done\":true"), std::string::npos);
}

TEST(LineSplitter, EverySplitPointGivesTheSameLines) {
  auto expected = lines_of({kRecorded});
  std::string_view all(kRecorded);
  for (size_t cut = 0; cut <= all.size(); ++cut)
    ASSERT_EQ(lines_of({all.substr(0, cut), all.substr(cut)}), expected) << "split at " << cut;
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < all.size(); ++i) bytes.push_back(all.substr(i, 1));
  EXPECT_EQ(lines_of(bytes), expected);
}

TEST(LineSplitter, KeepsAPartialLineAndRefusesAnOversizedOne) {
  LineSplitter s;
  int n = 0;
  s.feed("{\"half\":", [&](std::string_view) { ++n; });
  EXPECT_TRUE(s.has_partial_line());
  EXPECT_EQ(n, 0);
  LineSplitter small(8);
  EXPECT_FALSE(small.feed("0123456789", [](std::string_view) {}));
}

}  // namespace
}  // namespace plexus
