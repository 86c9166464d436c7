// Which URLs the router's own client takes, and the request head it writes.
#include "upstream/plain_http.hpp"

#include <gtest/gtest.h>

namespace plexus {
namespace {

TEST(PlainHttpUrl, SplitsWhatItTakes) {
  auto u = parse_plain_http_url("http://127.0.0.1:8080/v1/chat/completions?x=1#frag");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->authority, "127.0.0.1:8080");
  EXPECT_EQ(u->target, "/v1/chat/completions?x=1");
  auto bare = parse_plain_http_url("HTTP://localhost");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->port, 80);
  EXPECT_EQ(bare->target, "/");
  auto query = parse_plain_http_url("http://backend.internal?a=b");
  ASSERT_TRUE(query);
  EXPECT_EQ(query->target, "/?a=b");
  auto v6 = parse_plain_http_url("http://[::1]:11434/api/chat");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->authority, "[::1]:11434");
}

TEST(PlainHttpUrl, LeavesEverythingElseToCurl) {
  for (const char* url : {"https://api.openai.com/v1", "http://user:pw@host/", "http://host:0/", "http://host:70000/",
                          "http://host:8a/", "http://ho st/", "http://host/a b", "http://[::1/", "http://[zz]/", "ftp://host/",
                          "http://", "http://host\r\nX: y/"})
    EXPECT_FALSE(parse_plain_http_url(url)) << url;
}

TEST(RequestHead, CarriesHostHeadersAndTheBodyLength) {
  HttpRequest r;
  r.url = "http://127.0.0.1:9/v1/chat/completions";
  r.headers = {{"Content-Type", "application/json"}, {"Authorization", "Bearer k"}, {"Content-Length", "999"},
               {"Transfer-Encoding", "chunked"}};
  r.body = "{}";
  std::string head, error;
  ASSERT_TRUE(build_request_head(r, *parse_plain_http_url(r.url), head, error)) << error;
  EXPECT_EQ(head,
            "POST /v1/chat/completions HTTP/1.1\r\nContent-Type: application/json\r\nAuthorization: Bearer k\r\n"
            "Host: 127.0.0.1:9\r\nContent-Length: 2\r\n\r\n")
      << "the body's framing is always the client's own";
  r.method = "GET";
  r.body.clear();
  r.headers = {{"Host", "virtual.example"}};
  ASSERT_TRUE(build_request_head(r, *parse_plain_http_url(r.url), head, error));
  EXPECT_EQ(head, "GET /v1/chat/completions HTTP/1.1\r\nHost: virtual.example\r\n\r\n");
}

TEST(RequestHead, AHeaderCannotSmuggleALine) {
  HttpRequest r;
  r.url = "http://127.0.0.1:9/";
  std::string head, error;
  r.headers = {{"X-Key", "a\r\nX-Evil: 1"}};
  EXPECT_FALSE(build_request_head(r, *parse_plain_http_url(r.url), head, error));
  EXPECT_NE(error.find("X-Key"), std::string::npos);
  r.headers = {{"Bad Name", "v"}};
  EXPECT_FALSE(build_request_head(r, *parse_plain_http_url(r.url), head, error));
  r.headers = {};
  r.method = "GET /x HTTP/1.1\r\n";
  EXPECT_FALSE(build_request_head(r, *parse_plain_http_url(r.url), head, error));
}

}  // namespace
}  // namespace plexus
