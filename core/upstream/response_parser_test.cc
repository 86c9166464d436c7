// Backend response framing: what is a response, what is an error, that any split of the bytes
// gives the same head and body, and when a connection may carry the next request.
#include "upstream/response_parser.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace plexus {
namespace {

struct Collected final : ResponseSink {
  int status = 0;
  Headers headers;
  int heads = 0;
  std::string body;
  bool stop_after_body_piece = false;
  bool stopped = false;
  void on_head(int s, Headers&& h) override {
    ++heads;
    status = s;
    headers = std::move(h);
  }
  void on_body(std::string_view bytes) override {
    body.append(bytes);
    if (stop_after_body_piece) stopped = true;
  }
  bool wants_more() const override { return !stopped; }
};

struct Framed {
  Collected sink;
  ResponseParser::Status last = ResponseParser::Status::kNeedMore;
  std::string error;
  std::string rest;  // bytes after the response
  bool keep_alive = false;
};

// Feeds `data` in pieces of `piece` bytes (0: whole), keeping what was not consumed, as the
// client does; `eof`: the backend closes after the last byte.
Framed frame(std::string_view data, std::size_t piece = 0, bool eof = false, bool head_request = false) {
  Framed f;
  ResponseParser parser;
  parser.start(head_request);
  std::string buffer;
  for (std::size_t at = 0; at < data.size() && f.last == ResponseParser::Status::kNeedMore;) {
    std::size_t n = piece ? std::min(piece, data.size() - at) : data.size();
    buffer.append(data.substr(at, n));
    at += n;
    std::size_t used = 0;
    f.last = parser.parse(buffer, used, f.sink);
    buffer.erase(0, used);
    if (f.last == ResponseParser::Status::kComplete) buffer.append(data.substr(at));
  }
  if (eof && f.last == ResponseParser::Status::kNeedMore) f.last = parser.parse_eof(f.sink);
  f.error = parser.error();
  f.rest = buffer;
  f.keep_alive = parser.keep_alive();
  return f;
}

const char* kWhole =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nX-Request-Id: abc\r\n\r\n{\"ok\":true}";

TEST(ResponseParser, AWholeResponseWhateverTheSplit) {
  for (std::size_t piece : {0, 1, 2, 5, 64}) {
    auto f = frame(kWhole, piece);
    ASSERT_EQ(f.last, ResponseParser::Status::kComplete) << "piece " << piece << ": " << f.error;
    EXPECT_EQ(f.sink.status, 200);
    EXPECT_EQ(f.sink.heads, 1);
    EXPECT_EQ(f.sink.body, "{\"ok\":true}");
    ASSERT_EQ(f.sink.headers.size(), 3u);
    EXPECT_EQ(f.sink.headers[0], (std::pair<std::string, std::string>{"content-type", "application/json"}));
    EXPECT_EQ(f.sink.headers[2], (std::pair<std::string, std::string>{"x-request-id", "abc"}));
    EXPECT_TRUE(f.keep_alive);
  }
}

TEST(ResponseParser, ChunkedBodiesAreDechunkedAndTrailersAreNotHeaders) {
  std::string data =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n"
      "7\r\ndata: a\r\n10\r\n\n\ndata: [DONE]\n\n\r\n0\r\nX-Trailer: sneaky\r\n\r\n";
  for (std::size_t piece : {0, 1, 3, 17}) {
    auto f = frame(data, piece);
    ASSERT_EQ(f.last, ResponseParser::Status::kComplete) << "piece " << piece << ": " << f.error;
    EXPECT_EQ(f.sink.body, "data: a\n\ndata: [DONE]\n\n");
    EXPECT_EQ(f.sink.headers.size(), 2u) << "a trailer never passes for a header";
    EXPECT_TRUE(f.keep_alive);
  }
}

TEST(ResponseParser, ABodyThatRunsToTheCloseEndsAtTheCloseAndIsNotReused) {
  auto f = frame("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it", 4, true);
  ASSERT_EQ(f.last, ResponseParser::Status::kComplete) << f.error;
  EXPECT_EQ(f.sink.body, "all of it");
  EXPECT_FALSE(f.keep_alive);
}

TEST(ResponseParser, InterimResponsesAreSkipped) {
  auto f = frame("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + std::string(kWhole), 3);
  ASSERT_EQ(f.last, ResponseParser::Status::kComplete) << f.error;
  EXPECT_EQ(f.sink.heads, 1);
  EXPECT_EQ(f.sink.status, 200);
  EXPECT_EQ(f.sink.body, "{\"ok\":true}");
}

TEST(ResponseParser, BytesAfterTheResponseAreLeftAlone) {
  auto f = frame(std::string(kWhole) + "HTTP/1.1 200 OK\r\n");
  ASSERT_EQ(f.last, ResponseParser::Status::kComplete);
  EXPECT_EQ(f.rest, "HTTP/1.1 200 OK\r\n") << "the caller sees them, and does not reuse the connection";
}

TEST(ResponseParser, NoBodyAfterHeadOr204Or304) {
  auto head = frame("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", 0, false, true);
  EXPECT_EQ(head.last, ResponseParser::Status::kComplete);
  EXPECT_TRUE(head.sink.body.empty());
  auto none = frame("HTTP/1.1 204 No Content\r\n\r\n");
  EXPECT_EQ(none.last, ResponseParser::Status::kComplete);
  EXPECT_EQ(none.sink.status, 204);
}

TEST(ResponseParser, ConnectionCloseAndHttp10AreNotReused) {
  EXPECT_FALSE(frame("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keep_alive);
  EXPECT_FALSE(frame("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
  EXPECT_TRUE(frame("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n").keep_alive);
}

TEST(ResponseParser, WhatCannotBeFramedIsAnError) {
  for (std::string bad : {
           "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
           "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
           "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
           "HTTP/2 200\r\n\r\n",
           "SSH-2.0-OpenSSH_9.2\r\n",
           "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
       }) {
    auto f = frame(bad);
    EXPECT_EQ(f.last, ResponseParser::Status::kError) << bad;
    EXPECT_FALSE(f.error.empty());
    EXPECT_EQ(f.error.find("beast"), std::string::npos) << "our words, not the library's: " << f.error;
  }
}

TEST(ResponseParser, AHeadOverTheLimitIsAnError) {
  std::string big = "HTTP/1.1 200 OK\r\nX-Big: " + std::string(70000, 'a') + "\r\n\r\n";
  EXPECT_EQ(frame(big, 4096).last, ResponseParser::Status::kError);
}

TEST(ResponseParser, TheConnectionClosingEarlyIsAnError) {
  auto cut_body = frame("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf", 0, true);
  EXPECT_EQ(cut_body.last, ResponseParser::Status::kError);
  EXPECT_EQ(cut_body.sink.body, "half") << "what came is delivered";
  auto cut_head = frame("HTTP/1.1 200 OK\r\nContent-Le", 0, true);
  EXPECT_EQ(cut_head.last, ResponseParser::Status::kError);
  EXPECT_EQ(cut_head.sink.heads, 0);
  auto cut_chunk = frame("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 0, true);
  EXPECT_EQ(cut_chunk.last, ResponseParser::Status::kError);
}

TEST(ResponseParser, TheSinkCanStopItBetweenPiecesAndItGoesOnWhereItStopped) {
  std::string data = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n";
  ResponseParser parser;
  parser.start(false);
  Collected sink;
  sink.stop_after_body_piece = true;
  std::string_view rest = data;
  std::size_t used = 0;
  EXPECT_EQ(parser.parse(rest, used, sink), ResponseParser::Status::kStopped);
  EXPECT_EQ(sink.body, "abc");
  rest.remove_prefix(used);
  sink.stopped = false;
  sink.stop_after_body_piece = false;
  EXPECT_EQ(parser.parse(rest, used, sink), ResponseParser::Status::kComplete);
  EXPECT_EQ(sink.body, "abcdef");
}

}  // namespace
}  // namespace plexus
