#include "server/http_server.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <stdexcept>
#include <unordered_map>

namespace plexus {

// What one loop owns of the front: its watch on the shared listening socket and the
// connections it accepted.
struct HttpServer::PerLoop final : IoWatcher, ConnectionHandler {
  PerLoop(HttpServer& s, EventLoop& l, RequestRouter& r) : server(s), loop(l), router(r) {}

  HttpServer& server;
  EventLoop& loop;
  RequestRouter& router;
  bool listening = false;
  bool stopped = false;
  std::unordered_map<Connection*, std::shared_ptr<Connection>> connections;

  // The listening socket is level-triggered and EPOLLEXCLUSIVE: the kernel wakes one waiting
  // loop per new connection (an idle one first), which accepts a batch.
  void on_io(std::uint32_t) override {
    for (int i = 0; i < 64; ++i) {
      int fd = ::accept4(server.listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) pause_accepting();
        return;  // else EAGAIN: another loop took it
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      std::unique_ptr<ByteStream> stream;
      try {
        stream = server.tls_ ? server.tls_->wrap(fd) : make_plain_stream(fd);
      } catch (const std::exception&) {
        ::close(fd);
        continue;
      }
      auto conn = std::make_shared<Connection>(loop, fd, std::move(stream), server.options_.limits, *this);
      connections.emplace(conn.get(), conn);
      conn->start();
    }
  }

  // Out of file descriptors: the pending connection stays in the backlog and the level-triggered
  // listening socket would wake this loop again at once, forever. Stop watching it for a moment.
  void pause_accepting() {
    if (!listening) return;
    loop.unwatch(server.listen_fd_);
    listening = false;
    loop.after(std::chrono::milliseconds(100), [this] {
      if (!stopped) start_accepting();
    });
  }

  // Level-triggered and EPOLLEXCLUSIVE: see on_io.
  void start_accepting() {
    loop.watch(server.listen_fd_, EPOLLIN | EPOLLEXCLUSIVE, this);
    listening = true;
  }

  void on_request(IncomingRequest request, std::shared_ptr<Responder> responder) override {
    router.on_request(std::move(request), std::move(responder));
  }
  void on_framing_error(const FramingError& error, std::shared_ptr<Responder> responder) override {
    router.on_framing_error(error, std::move(responder));
  }
  void on_closed(Connection& c) override {
    auto it = connections.find(&c);
    if (it == connections.end()) return;
    loop.retire(std::move(it->second));  // events for it may still be queued in this turn
    connections.erase(it);
  }

  void stop() {
    stopped = true;
    if (listening) loop.unwatch(server.listen_fd_);
    listening = false;
    auto all = std::move(connections);
    connections.clear();
    for (auto& [ptr, conn] : all) {
      conn->close();
      loop.retire(conn);
    }
  }
};

HttpServer::HttpServer(HttpServerOptions options, LoopGroup& loops,
                       std::function<RequestRouter&(std::size_t)> router_for)
    : options_(std::move(options)), loops_(loops), router_for_(std::move(router_for)) {
  if (!options_.tls_cert.empty()) tls_ = std::make_shared<TlsContext>(options_.tls_cert, options_.tls_key);
}

HttpServer::~HttpServer() {
  for (auto& per : per_loop_) per->stop();  // the loops' threads are gone: nothing races
  per_loop_.clear();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

void HttpServer::start() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string port = std::to_string(options_.port);
  if (int rc = ::getaddrinfo(options_.host.c_str(), port.c_str(), &hints, &found); rc != 0)
    throw std::runtime_error(std::string("cannot resolve the listen address: ") + gai_strerror(rc));
  std::string error = "no address";
  for (addrinfo* a = found; a; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 4096) == 0) {
      listen_fd_ = fd;
      break;
    }
    error = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(found);
  if (listen_fd_ < 0) throw std::runtime_error(error);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);

  for (std::size_t i = 0; i < loops_.size(); ++i) {
    auto per = std::make_unique<PerLoop>(*this, loops_.at(i), router_for_(i));
    PerLoop* p = per.get();
    per_loop_.push_back(std::move(per));
    p->loop.post([p] { p->start_accepting(); });
  }
}

void HttpServer::stop() {
  std::vector<std::future<void>> done;
  for (auto& per : per_loop_) {
    auto promise = std::make_shared<std::promise<void>>();
    done.push_back(promise->get_future());
    per->loop.post([p = per.get(), promise] {
      p->stop();
      promise->set_value();
    });
  }
  // A stuck loop never answers: the destructor closes its connections once its thread is gone.
  for (auto& d : done) d.wait_for(std::chrono::seconds(2));
}

}  // namespace plexus
