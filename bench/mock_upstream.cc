// A fast OpenAI-compatible mock for benchmarks: single-threaded epoll, keep-alive, a few µs per
// request so it is never the bottleneck. POST with "stream":true in the body gets a paced SSE
// stream (--events N chunks, --interval-ms M apart; the first goes out with the headers), any
// other POST gets one canned chat.completion.
//   mock_upstream --port 0 [--events 20] [--interval-ms 50]   (prints "port N" when ready)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

const std::string kWhole =
    R"({"id":"chatcmpl-mock","object":"chat.completion","created":1700000000,"model":"mock","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! This is a canned answer from the benchmark mock upstream, long enough to look like a short reply."},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":24,"total_tokens":36}})";
const std::string kChunk =
    R"({"id":"chatcmpl-mock","object":"chat.completion.chunk","created":1700000000,"model":"mock","choices":[{"index":0,"delta":{"content":" token"},"logprobs":null,"finish_reason":null}]})";
const std::string kLast =
    R"({"id":"chatcmpl-mock","object":"chat.completion.chunk","created":1700000000,"model":"mock","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":20,"total_tokens":32}})";

struct Conn {
  std::string in;
  int stream_left = 0;  // events still to send on the current stream
};

int events_per_stream = 20;
int interval_ms = 50;

std::string chunk(const std::string& payload) {
  char head[16];
  int n = std::snprintf(head, sizeof head, "%zx\r\n", payload.size());
  return std::string(head, n) + payload + "\r\n";
}

void send_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;  // a slow or gone client: the benchmark never fills a socket buffer
    off += static_cast<size_t>(n);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--port") port = std::atoi(argv[i + 1]);
    if (a == "--events") events_per_stream = std::atoi(argv[i + 1]);
    if (a == "--interval-ms") interval_ms = std::atoi(argv[i + 1]);
  }
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) || listen(lfd, 4096)) {
    std::perror("bind/listen");
    return 1;
  }
  socklen_t len = sizeof addr;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::printf("port %d\n", ntohs(addr.sin_port));
  std::fflush(stdout);

  int ep = epoll_create1(0);
  epoll_event ev{EPOLLIN, {.fd = lfd}};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  std::unordered_map<int, Conn> conns;
  using Due = std::pair<Clock::time_point, int>;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> timers;
  std::vector<epoll_event> events(1024);

  for (;;) {
    // To the nanosecond: a timeout in whole milliseconds, rounded down, woke the mock early and
    // then spun it at timeout 0 until the event was due, up to 1 ms in every interval (a core's
    // worth of spinning with hundreds of streams, taken from the proxies it measures).
    timespec wait{};
    timespec* timeout = nullptr;
    if (!timers.empty()) {
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(timers.top().first - Clock::now()).count();
      if (ns < 0) ns = 0;
      wait = {static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
      timeout = &wait;
    }
    int n = epoll_pwait2(ep, events.data(), static_cast<int>(events.size()), timeout, nullptr);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          int c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK);
          if (c < 0) break;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event cev{EPOLLIN, {.fd = c}};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
          conns[c] = Conn{};
        }
        continue;
      }
      Conn& conn = conns[fd];
      char buf[65536];
      bool closed = false;
      for (;;) {
        ssize_t r = ::recv(fd, buf, sizeof buf, 0);
        if (r > 0) {
          conn.in.append(buf, static_cast<size_t>(r));
          continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) closed = true;
        break;
      }
      if (closed) {
        close(fd);
        conns.erase(fd);
        continue;
      }
      // Answer every complete request in the buffer (Content-Length bodies only).
      for (;;) {
        size_t head_end = conn.in.find("\r\n\r\n");
        if (head_end == std::string::npos) break;
        size_t body_len = 0;
        for (const char* name : {"Content-Length:", "content-length:"}) {
          size_t at = conn.in.find(name);
          if (at != std::string::npos && at < head_end) body_len = std::strtoul(conn.in.c_str() + at + 15, nullptr, 10);
        }
        if (conn.in.size() < head_end + 4 + body_len) break;
        std::string body = conn.in.substr(head_end + 4, body_len);
        conn.in.erase(0, head_end + 4 + body_len);
        bool stream = body.find("\"stream\":true") != std::string::npos;
        if (!stream) {
          send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                           std::to_string(kWhole.size()) + "\r\n\r\n" + kWhole);
        } else {
          send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n" + chunk("data: " + kChunk + "\n\n"));
          conn.stream_left = events_per_stream - 1;
          timers.emplace(Clock::now() + std::chrono::milliseconds(interval_ms), fd);
        }
      }
    }
    auto now = Clock::now();
    while (!timers.empty() && timers.top().first <= now) {
      int fd = timers.top().second;
      timers.pop();
      auto it = conns.find(fd);
      if (it == conns.end() || it->second.stream_left <= 0) continue;
      Conn& conn = it->second;
      if (--conn.stream_left > 0) {
        send_all(fd, chunk("data: " + kChunk + "\n\n"));
        timers.emplace(now + std::chrono::milliseconds(interval_ms), fd);
      } else {
        send_all(fd, chunk("data: " + kChunk + "\n\n") + chunk("data: " + kLast + "\n\n") +
                         chunk("data: [DONE]\n\n") + "0\r\n\r\n");
      }
    }
  }
}
