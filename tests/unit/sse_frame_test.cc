#include "server/sse_frame.hpp"

#include <gtest/gtest.h>

namespace plexus {
namespace {

TEST(SseFrame, DataEventIsOneHttpChunk) {
  std::string out;
  append_sse_data_chunk(out, R"({"a":1})");
  // "data: {"a":1}\n\n" is 15 bytes = 0xf
  EXPECT_EQ(out, "f\r\ndata: {\"a\":1}\n\n\r\n");
}

TEST(SseFrame, EmptyPayloadWritesNothingBecauseAnEmptyChunkEndsTheBody) {
  std::string out;
  append_http_chunk(out, "");
  EXPECT_EQ(out, "");
  append_http_chunk(out, std::string(300, 'x'));
  EXPECT_EQ(out.substr(0, 5), "12c\r\n");
  EXPECT_EQ(kLastHttpChunk, "0\r\n\r\n");
}

}  // namespace
}  // namespace plexus
