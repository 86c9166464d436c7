// The strict request framing: what is a request, what is an error, and that any split of the
// bytes gives the same answer.
#include "server/request_parser.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace plexus {
namespace {

struct Framed {
  std::vector<IncomingRequest> requests;
  int error = 0;  // the status of the error that ended the stream; 0: none
};

// Feeds `data` in pieces of `piece` bytes (0: whole), as a connection does.
Framed frame(std::string_view data, std::size_t piece = 0, std::size_t max_body = 1024) {
  RequestParser parser(4096, max_body);
  Framed out;
  std::string buffer;
  for (std::size_t at = 0; at < data.size();) {
    std::size_t n = piece ? std::min(piece, data.size() - at) : data.size();
    buffer.append(data.substr(at, n));
    at += n;
    while (!buffer.empty()) {
      std::size_t used = 0;
      auto status = parser.parse(buffer, used);
      buffer.erase(0, used);
      if (status == RequestParser::Status::kNeedMore) break;
      if (status == RequestParser::Status::kError) {
        out.error = parser.error().status;
        return out;
      }
      out.requests.push_back(parser.take());
    }
  }
  return out;
}

TEST(RequestParser, PipelinedRequestsComeOutInOrderWhateverTheSplit) {
  std::string data =
      "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
      "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
      "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
      "GET /old HTTP/1.0\r\n\r\n";
  for (std::size_t piece : {0, 1, 2, 7, 64}) {
    auto f = frame(data, piece);
    ASSERT_EQ(f.requests.size(), 4u) << "piece " << piece;
    EXPECT_EQ(f.error, 0);
    EXPECT_EQ(f.requests[0].path, "/healthz");
    EXPECT_EQ(f.requests[1].path, "/v1/chat/completions");
    EXPECT_EQ(f.requests[1].target, "/v1/chat/completions?x=1");
    EXPECT_EQ(f.requests[1].body, "hello");
    EXPECT_EQ(f.requests[2].body, "abcde");
    EXPECT_TRUE(f.requests[2].keep_alive);
    EXPECT_EQ(f.requests[3].version_minor, 0);
    EXPECT_FALSE(f.requests[3].keep_alive) << "HTTP/1.0 without keep-alive closes";
  }
}

TEST(RequestParser, EveryFramingErrorStopsTheStream) {
  struct Case {
    const char* name;
    std::string bytes;
    int status;
  } cases[] = {
      {"body over the limit by length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n", 413},
      {"body over the limit by chunks", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n" + std::string(1024, 'x') + "\r\n400\r\n", 413},
      {"negative length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
      {"length over 2^64", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", 400},
      {"two lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
      {"length and chunked", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"bad chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"header without a colon", "GET / HTTP/1.1\r\nHost: a\r\nBroken\r\n\r\n", 400},
      {"no Host", "GET / HTTP/1.1\r\n\r\n", 400},
      {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"unknown transfer coding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
      {"headers over the limit", "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(5000, 'a') + "\r\n\r\n", 431},
      {"HTTP/1.2 request line", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505},
  };
  for (const auto& c : cases) {
    std::string smuggled = c.bytes + "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
    for (std::size_t piece : {0, 1, 5}) {
      auto f = frame(smuggled, piece);
      EXPECT_EQ(f.error, c.status) << c.name << ", piece " << piece;
      EXPECT_TRUE(f.requests.empty()) << c.name << ": nothing after an error is a request";
    }
  }
}

TEST(RequestParser, ChunkedTrailersNeverPassForHeaders) {
  auto f = frame(
      "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n"
      "Authorization: Bearer smuggled\r\n\r\n");
  ASSERT_EQ(f.requests.size(), 1u);
  EXPECT_EQ(f.requests[0].header("authorization"), nullptr);
  EXPECT_EQ(f.requests[0].body, "x");
}

TEST(RequestParser, AnnouncesWhenTheClientWaitsFor100Continue) {
  RequestParser parser(4096, 1024);
  std::string head = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n";
  std::size_t used = 0;
  EXPECT_EQ(parser.parse(head, used), RequestParser::Status::kNeedMore);
  EXPECT_TRUE(parser.wants_continue());
  EXPECT_EQ(parser.parse("body", used), RequestParser::Status::kComplete);
  EXPECT_EQ(parser.take().body, "body");
}

TEST(RequestParser, ABodyKeepsRoomForSimdjsonsPadding) {
  // Requests are validated where they lie (JsonText with readable_after): the body must leave
  // 64 readable bytes past its end, by Content-Length and when chunked.
  for (std::string data : {std::string("POST /c HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"),
                           std::string("POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")}) {
    auto f = frame(data);
    ASSERT_EQ(f.requests.size(), 1u);
    const std::string& body = f.requests[0].body;
    EXPECT_GE(body.capacity() - body.size(), 64u) << data;
  }
}

}  // namespace
}  // namespace plexus
