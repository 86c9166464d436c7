// The citation scanner: markers found whatever the chunking, indices in code points, only
// citations of real sources.
#include "citations.hpp"

#include <gtest/gtest.h>

namespace plexus::web {
namespace {

std::vector<Source> sources() {
  return {{"One", "https://one.example/a", "first"}, {"Two", "https://two.example/b/", "second"},
          {"Three", "https://three.example/c", "third"}};
}

std::vector<Citation> scan_in_pieces(const std::vector<Source>& s, std::vector<std::string> pieces,
                                     std::vector<std::size_t>* completed_in = nullptr) {
  CitationScanner scanner(s);
  std::vector<Citation> all;
  for (std::size_t i = 0; i < pieces.size(); ++i)
    for (const auto& c : scanner.feed(pieces[i])) {
      all.push_back(c);
      if (completed_in) completed_in->push_back(i);
    }
  return all;
}

TEST(WebCitations, NumberedMarkersWithCodePointIndices) {
  auto s = sources();
  // "é" and "ü" are two bytes each but one code point.
  auto found = scan_in_pieces(s, {"Café [1] and über [3]."});
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].source, 0u);
  EXPECT_EQ(found[0].start, 5u);
  EXPECT_EQ(found[0].end, 8u);
  EXPECT_EQ(found[1].source, 2u);
  EXPECT_EQ(found[1].start, 18u);
  EXPECT_EQ(found[1].end, 21u);
}

TEST(WebCitations, AMarkerSplitAcrossChunksIsReportedByTheChunkThatEndsIt) {
  auto s = sources();
  std::vector<std::size_t> in;
  auto found = scan_in_pieces(s, {"See [", "2", "] now", " and [3]"}, &in);
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(in[0], 2u);
  EXPECT_EQ(found[0].start, 4u);
  EXPECT_EQ(found[0].end, 7u);
  EXPECT_EQ(in[1], 3u);
}

TEST(WebCitations, AMultiByteCharacterSplitAcrossChunksCountsOnce) {
  auto s = sources();
  std::string e_acute = "\xC3\xA9";
  auto found = scan_in_pieces(s, {std::string("caf") + e_acute[0], std::string(1, e_acute[1]) + " [1]"});
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].start, 5u);
}

TEST(WebCitations, MarkdownLinksToASourceCount) {
  auto s = sources();
  auto found = scan_in_pieces(s, {"Read [the docs](https://two.example/b", ") or [x](https://elsewhere.example)."});
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].source, 1u);  // the trailing slash does not matter
  EXPECT_EQ(found[0].start, 5u);
  EXPECT_EQ(found[0].end, 5u + std::string("[the docs](https://two.example/b)").size());
}

TEST(WebCitations, WhatIsNotACitationIsNot) {
  auto s = sources();
  EXPECT_TRUE(scan_in_pieces(s, {"a [0] b [4] c [x] d [1 ] e [12345] f [[ g ]"}).empty());
  auto nested = scan_in_pieces(s, {"[see [2]]"});
  ASSERT_EQ(nested.size(), 1u);
  EXPECT_EQ(nested[0].start, 5u);
}

TEST(WebCitations, AnUnclosedBracketDoesNotHoldForever) {
  auto s = sources();
  std::string filler(5000, 'x');
  auto found = scan_in_pieces(s, {"[", filler, " [1]"});
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].start, 5002u);
}

TEST(WebCitations, AnnotationHasOpenAIsShape) {
  auto s = sources();
  auto a = annotation(s[0], {0, 3, 6});
  EXPECT_EQ(a["type"], "url_citation");
  EXPECT_EQ(a["url_citation"]["url"], "https://one.example/a");
  EXPECT_EQ(a["url_citation"]["title"], "One");
  EXPECT_EQ(a["url_citation"]["content"], "first");
  EXPECT_EQ(a["url_citation"]["start_index"], 3);
  EXPECT_EQ(a["url_citation"]["end_index"], 6);
}

}  // namespace
}  // namespace plexus::web
