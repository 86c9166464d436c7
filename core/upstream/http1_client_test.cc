// The router's own HTTP/1.1 client against a scripted backend on a real socket: whole and
// chunked answers, connection reuse, a pooled connection the backend closed, timeouts, pause and
// resume, aborts, refused connections and names that need resolving.
#include "upstream/http1_client.hpp"

#include "loop/loop_thread.hpp"
#include "upstream/upstream_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

namespace plexus {
namespace {

using namespace std::chrono_literals;

// A backend that runs `serve` for each connection it accepts, one connection at a time.
class ScriptedBackend {
 public:
  using Serve = std::function<void(int fd, int connection_index)>;
  explicit ScriptedBackend(Serve serve) : serve_(std::move(serve)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(fd_, 16);
    thread_ = std::thread([this] {
      for (int i = 0;; ++i) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        accepted_++;
        current_ = c;
        serve_(c, i);
        current_ = -1;
        ::close(c);
      }
    });
  }
  ~ScriptedBackend() {
    ::shutdown(fd_, SHUT_RDWR);
    if (int c = current_; c >= 0) ::shutdown(c, SHUT_RDWR);  // a connection the client keeps pooled
    ::close(fd_);
    thread_.join();
  }
  std::string url(const std::string& host = "127.0.0.1") const {
    return "http://" + host + ":" + std::to_string(port_) + "/v1/chat/completions";
  }
  int accepted() const { return accepted_; }

 private:
  Serve serve_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::atomic<int> current_{-1};
  std::thread thread_;
};

// Reads one request (head and Content-Length body); false when the connection ended first.
bool read_request(int fd, std::string* head_out = nullptr) {
  std::string data;
  char buf[4096];
  while (true) {
    auto end = data.find("\r\n\r\n");
    if (end != std::string::npos) {
      std::size_t length = 0;
      auto cl = data.find("Content-Length: ");
      if (cl != std::string::npos && cl < end) length = std::stoul(data.substr(cl + 16));
      if (data.size() >= end + 4 + length) {
        if (head_out) *head_out = data.substr(0, end + 4);
        return true;
      }
    }
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    data.append(buf, static_cast<std::size_t>(n));
  }
}

void write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::string whole(std::string_view body) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + std::string(body);
}

struct Result {
  int status = 0;
  Headers headers;
  std::string body;
  TransferError error = TransferError::kNone;
  std::string detail;
  int ends = 0;
};

// Records one transfer; `on_data_hook` runs after each piece (to pause or abort from inside).
struct Recorder final : HttpResponseHandler {
  TransferId id = 0;
  Result result;
  std::promise<Result> done;
  std::function<void(Recorder&)> on_data_hook;
  void on_status(int status, const Headers& headers) override {
    result.status = status;
    result.headers = headers;
  }
  void on_data(std::string_view bytes) override {
    result.body.append(bytes);
    if (on_data_hook) on_data_hook(*this);
  }
  void on_end(TransferError error, std::string_view detail) override {
    result.error = error;
    result.detail = std::string(detail);
    ++result.ends;
    done.set_value(result);
  }
};

class Http1ClientTest : public ::testing::Test {
 protected:
  void TearDown() override {
    thread_.run([&] { return client_.reset(), 0; });  // on its loop, before the loop goes
    thread_.stop();
  }
  // Runs `fn` on the loop and waits for it.
  template <class Fn>
  auto on_loop(Fn fn) {
    return thread_.run(std::move(fn));
  }
  HttpRequest request(const std::string& url) {
    HttpRequest r;
    r.url = url;
    r.headers = {{"Content-Type", "application/json"}};
    r.body = R"({"model":"m"})";
    return r;
  }
  // One transfer, start to end.
  Result fetch(HttpRequest r, std::function<void(Recorder&)> hook = nullptr, std::shared_ptr<Recorder>* keep = nullptr) {
    auto rec = std::make_shared<Recorder>();
    rec->on_data_hook = std::move(hook);
    auto done = rec->done.get_future();
    on_loop([&] { return rec->id = client_->start(std::move(r), rec), 0; });
    if (keep) *keep = rec;
    EXPECT_EQ(done.wait_for(10s), std::future_status::ready);
    return done.get();
  }

  LoopThread thread_;
  EventLoop& loop_ = thread_.loop();
  std::unique_ptr<Http1Client> client_ = std::make_unique<Http1Client>(loop_);
};

TEST_F(Http1ClientTest, WholeAnswersReuseOneConnection) {
  ScriptedBackend backend([](int fd, int) {
    while (read_request(fd)) write_all(fd, whole(R"({"ok":true})"));
  });
  for (int i = 0; i < 3; ++i) {
    auto r = fetch(request(backend.url()));
    EXPECT_EQ(r.error, TransferError::kNone) << r.detail;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, R"({"ok":true})");
    EXPECT_EQ(r.ends, 1);
  }
  EXPECT_EQ(on_loop([&] { return client_->connections_opened(); }), 1u);
  EXPECT_EQ(backend.accepted(), 1);
}

TEST_F(Http1ClientTest, TheRequestGoesOutAsWritten) {
  std::promise<std::string> head;
  ScriptedBackend backend([&](int fd, int) {
    std::string h;
    if (read_request(fd, &h)) head.set_value(h);
    write_all(fd, whole("{}"));
  });
  fetch(request(backend.url()));
  std::string h = head.get_future().get();
  EXPECT_EQ(h.rfind("POST /v1/chat/completions HTTP/1.1\r\n", 0), 0u) << h;
  EXPECT_NE(h.find("\r\nHost: 127.0.0.1:"), std::string::npos) << h;
  EXPECT_NE(h.find("\r\nContent-Length: 13\r\n"), std::string::npos) << h;
}

TEST_F(Http1ClientTest, AChunkedStreamArrivesPieceByPiece) {
  ScriptedBackend backend([](int fd, int) {
    if (!read_request(fd)) return;
    write_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 5; ++i) {
      std::string event = "data: {\"n\":" + std::to_string(i) + "}\n\n";
      char size[16];
      snprintf(size, sizeof size, "%zx\r\n", event.size());
      write_all(fd, size + event + "\r\n");
      std::this_thread::sleep_for(5ms);
    }
    write_all(fd, "0\r\n\r\n");
  });
  auto r = fetch(request(backend.url()));
  EXPECT_EQ(r.error, TransferError::kNone) << r.detail;
  EXPECT_EQ(r.body, "data: {\"n\":0}\n\ndata: {\"n\":1}\n\ndata: {\"n\":2}\n\ndata: {\"n\":3}\n\ndata: {\"n\":4}\n\n");
  ASSERT_FALSE(r.headers.empty());
  EXPECT_EQ(r.headers[0].first, "content-type");
}

TEST_F(Http1ClientTest, APooledConnectionTheBackendDroppedIsReplacedWithoutAnError) {
  // The first connection answers once, then takes the next request and closes without a word:
  // the keep-alive race. The client sends it again on a new connection.
  ScriptedBackend backend([](int fd, int index) {
    if (index == 0) {
      if (read_request(fd)) write_all(fd, whole(R"({"n":1})"));
      read_request(fd);
      return;
    }
    while (read_request(fd)) write_all(fd, whole(R"({"n":2})"));
  });
  EXPECT_EQ(fetch(request(backend.url())).body, R"({"n":1})");
  auto r = fetch(request(backend.url()));
  EXPECT_EQ(r.error, TransferError::kNone) << r.detail;
  EXPECT_EQ(r.body, R"({"n":2})");
  EXPECT_EQ(backend.accepted(), 2);
}

TEST_F(Http1ClientTest, ANewConnectionClosedWithoutAnAnswerIsAnErrorNotARetry) {
  ScriptedBackend backend([](int fd, int) { read_request(fd); });
  auto r = fetch(request(backend.url()));
  EXPECT_EQ(r.error, TransferError::kProtocol);
  EXPECT_EQ(r.ends, 1);
  EXPECT_EQ(backend.accepted(), 1);
}

TEST_F(Http1ClientTest, ATruncatedBodyIsAnError) {
  ScriptedBackend backend([](int fd, int) {
    if (read_request(fd)) write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this");
  });
  auto r = fetch(request(backend.url()));
  EXPECT_EQ(r.error, TransferError::kProtocol);
  EXPECT_EQ(r.body, "only this");
  EXPECT_EQ(on_loop([&] { return client_->open_connections(); }), 0u);
}

TEST_F(Http1ClientTest, AResponseThatCannotBeFramedIsAProtocolError) {
  ScriptedBackend backend([](int fd, int) {
    if (read_request(fd)) write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello");
  });
  auto r = fetch(request(backend.url()));
  EXPECT_EQ(r.error, TransferError::kProtocol);
  EXPECT_NE(r.detail.find("Content-Length"), std::string::npos) << r.detail;
}

TEST_F(Http1ClientTest, ARefusedConnectionIsAConnectError) {
  int port;
  {
    ScriptedBackend gone([](int, int) {});
    port = std::stoi(gone.url().substr(gone.url().rfind(':') + 1));
  }
  auto r = fetch(request("http://127.0.0.1:" + std::to_string(port) + "/v1"));
  EXPECT_EQ(r.error, TransferError::kConnect);
  EXPECT_NE(r.detail.find("127.0.0.1"), std::string::npos) << r.detail;
}

// UpstreamClient only hands it plain http:// URLs; anything else, or a request that cannot be
// written as HTTP/1.1, ends once with an error, from inside start(), and leaves no transfer.
TEST_F(Http1ClientTest, AUrlItDoesNotTakeOrARequestItCannotWriteEndsOnceWithAnError) {
  for (const char* url : {"https://127.0.0.1:1/v1", "http://user:pw@127.0.0.1:1/v1", "ftp://127.0.0.1/v1"}) {
    auto r = fetch(request(url));
    EXPECT_EQ(r.error, TransferError::kConnect) << url;
    EXPECT_NE(r.detail.find("is not a plain http:// URL"), std::string::npos) << r.detail;
    EXPECT_EQ(r.ends, 1) << url;
  }
  auto bad = request("http://127.0.0.1:1/v1");
  bad.headers.emplace_back("X-Note", "a\r\nInjected: 1");
  auto r = fetch(bad);
  EXPECT_EQ(r.error, TransferError::kProtocol);
  EXPECT_NE(r.detail.find("holds a line break"), std::string::npos) << r.detail;
  EXPECT_EQ(on_loop([&] { return client_->open_connections(); }), 0u) << "nothing was dialled";
}

TEST_F(Http1ClientTest, ANameIsResolvedOffTheLoop) {
  ScriptedBackend backend([](int fd, int) {
    while (read_request(fd)) write_all(fd, whole("{}"));
  });
  auto r = fetch(request(backend.url("localhost")));
  EXPECT_EQ(r.error, TransferError::kNone) << r.detail;
  auto missing = fetch(request("http://no-such-host.invalid:80/v1"));
  EXPECT_EQ(missing.error, TransferError::kConnect);
  EXPECT_NE(missing.detail.find("no-such-host.invalid"), std::string::npos) << missing.detail;
}

TEST_F(Http1ClientTest, NoAnswerInTimeIsAFirstByteTimeout) {
  std::promise<void> release;
  auto released = release.get_future();
  ScriptedBackend backend([&](int fd, int) {
    read_request(fd);
    released.wait_for(5s);
  });
  auto req = request(backend.url());
  req.first_byte_timeout = 100ms;
  auto r = fetch(req);
  release.set_value();
  EXPECT_EQ(r.error, TransferError::kFirstByteTimeout);
}

TEST_F(Http1ClientTest, SilenceMidStreamIsAnIdleTimeout) {
  std::promise<void> release;
  auto released = release.get_future();
  ScriptedBackend backend([&](int fd, int) {
    if (!read_request(fd)) return;
    write_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    released.wait_for(5s);
  });
  auto req = request(backend.url());
  req.idle_timeout = 150ms;
  auto r = fetch(req);
  release.set_value();
  EXPECT_EQ(r.error, TransferError::kIdleTimeout);
  EXPECT_EQ(r.body, "abc");
}

TEST_F(Http1ClientTest, PausedTransfersReadNothingUntilResumedAndLoseNothing) {
  const std::string big(4u << 20, 'x');
  ScriptedBackend backend([&](int fd, int) {
    if (read_request(fd)) write_all(fd, whole(big));
  });
  std::atomic<int> pauses{0};
  auto r = fetch(request(backend.url()), [&](Recorder& rec) {
    if (pauses++ < 3) {
      client_->pause(rec.id);
      loop_.after(30ms, [this, id = rec.id] { client_->resume(id); });
    }
  });
  EXPECT_EQ(r.error, TransferError::kNone) << r.detail;
  EXPECT_EQ(r.body.size(), big.size());
  EXPECT_EQ(r.body, big);
}

TEST_F(Http1ClientTest, AnAbortFromInsideACallbackEndsEverything) {
  ScriptedBackend backend([](int fd, int) {
    if (!read_request(fd)) return;
    write_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    std::this_thread::sleep_for(50ms);
    write_all(fd, "3\r\ndef\r\n0\r\n\r\n");
  });
  auto rec = std::make_shared<Recorder>();
  std::promise<void> aborted;
  rec->on_data_hook = [&](Recorder& r) {
    client_->abort(r.id);
    aborted.set_value();
  };
  on_loop([&] { return rec->id = client_->start(request(backend.url()), rec), 0; });
  aborted.get_future().wait();
  std::this_thread::sleep_for(150ms);
  EXPECT_EQ(on_loop([&] { return rec->result.ends; }), 0) << "no callback after abort(), not even on_end";
  EXPECT_EQ(on_loop([&] { return rec->result.body; }), "abc");
  EXPECT_EQ(on_loop([&] { return client_->open_connections(); }), 0u) << "a half-read connection is never reused";
}

TEST_F(Http1ClientTest, AnAnswerBeforeTheWholeRequestWentOutLeavesTheConnectionUnused) {
  ScriptedBackend backend([](int fd, int index) {
    if (index == 0) {  // answers from the head alone, the way a server refuses a large body
      char buf[4096];
      std::string head;
      while (head.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return;
        head.append(buf, static_cast<std::size_t>(n));
      }
      write_all(fd, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n");
      std::this_thread::sleep_for(200ms);
      return;
    }
    while (read_request(fd)) write_all(fd, whole("{}"));
  });
  auto big = request(backend.url());
  big.body = std::string(16u << 20, 'x');  // more than the socket buffers take at once
  auto r = fetch(big);
  EXPECT_EQ(r.status, 413);
  auto next = fetch(request(backend.url()));
  EXPECT_EQ(next.error, TransferError::kNone) << next.detail;
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(backend.accepted(), 2) << "the half-sent connection was not reused";
}

TEST_F(Http1ClientTest, ManyTransfersAtOnceEachGetTheirOwnAnswer) {
  ScriptedBackend backend([](int fd, int) {
    std::string head;
    while (read_request(fd, &head)) {
      auto at = head.find("X-N: ");
      write_all(fd, whole(head.substr(at + 5, head.find("\r\n", at) - at - 5)));
    }
  });
  // The backend serves one connection at a time: start them one after another, each when the
  // last ended, and check every answer is its own.
  for (int i = 0; i < 50; ++i) {
    auto req = request(backend.url());
    req.headers.emplace_back("X-N", std::to_string(i));
    EXPECT_EQ(fetch(req).body, std::to_string(i));
  }
  EXPECT_EQ(backend.accepted(), 1);
}

// An UpstreamClient on a loop of its own, and one transfer through it, start to end.
class UpstreamClientTest : public ::testing::Test {
 protected:
  void TearDown() override { thread_.run([&] { return client_.reset(), 0; }); }
  Result fetch(HttpRequest r) {
    auto rec = std::make_shared<Recorder>();
    auto done = rec->done.get_future();
    thread_.run([&] { return rec->id = client_->start(std::move(r), rec), 0; });
    EXPECT_EQ(done.wait_for(10s), std::future_status::ready);
    return done.get();
  }
  // The backend's URL with credentials in it: a URL only libcurl takes.
  static HttpRequest with_credentials(const ScriptedBackend& backend) {
    HttpRequest r;
    r.url = backend.url();
    r.url.insert(std::string("http://").size(), "user:pw@");
    r.body = "{}";
    return r;
  }
  std::uint64_t own_connections() { return thread_.run([&] { return client_->own().connections_opened(); }); }

  LoopThread thread_;
  std::unique_ptr<UpstreamClient> client_ = std::make_unique<UpstreamClient>(thread_.loop());
};

// UpstreamClient hands what the own client does not take to libcurl: a URL with credentials
// goes out through curl (which turns them into Basic auth), on the same loop, and abort ids
// reach the right client.
TEST_F(UpstreamClientTest, WhatTheOwnClientDoesNotTakeGoesThroughLibcurl) {
  std::promise<std::string> head;
  bool first = true;
  ScriptedBackend backend([&](int fd, int) {
    std::string h;  // one request per connection: the backend serves one connection at a time
    if (!read_request(fd, &h)) return;
    if (std::exchange(first, false)) head.set_value(h);
    write_all(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 14\r\n\r\n{\"via\":\"curl\"}");
  });
  auto result = fetch(with_credentials(backend));
  EXPECT_EQ(result.error, TransferError::kNone) << result.detail;
  EXPECT_EQ(result.body, R"({"via":"curl"})");
  EXPECT_NE(head.get_future().get().find("Authorization: Basic dXNlcjpwdw=="), std::string::npos);
  EXPECT_EQ(own_connections(), 0u) << "the own client never saw it";
  // A plain URL on the same client is the own client's.
  HttpRequest plain;
  plain.url = backend.url();
  EXPECT_EQ(fetch(plain).error, TransferError::kNone);
  EXPECT_EQ(own_connections(), 1u);
}

// libcurl's side keeps the same deadlines (transfer_deadlines.hpp): a backend that never answers
// ends the transfer with a first-byte timeout there too.
TEST_F(UpstreamClientTest, LibcurlTransfersKeepTheFirstByteDeadline) {
  std::promise<void> release;
  auto released = release.get_future().share();
  ScriptedBackend backend([released](int fd, int) {
    read_request(fd);
    released.wait_for(5s);
  });
  auto r = with_credentials(backend);
  r.first_byte_timeout = 150ms;
  auto result = fetch(r);
  release.set_value();
  EXPECT_EQ(result.error, TransferError::kFirstByteTimeout) << result.detail;
  EXPECT_EQ(result.detail, "no response within 150 ms");
  EXPECT_EQ(result.ends, 1);
}

}  // namespace
}  // namespace plexus
