#include "upstream/http1_client.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <vector>

#include "upstream/plain_http.hpp"
#include "upstream/resolver.hpp"
#include "upstream/response_parser.hpp"
#include "upstream/transfer_deadlines.hpp"

namespace plexus {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kReadChunk = 64u << 10;
constexpr std::size_t kMaxCachedUrls = 1024;
constexpr std::chrono::seconds kSweepEvery{10};

// Where a URL leads, parsed once per distinct URL (a router has a handful).
struct Target {
  PlainHttpUrl url;
  std::string origin;  // host:port, the key of the connection pool
};

}  // namespace

struct Http1Client::Impl {
  struct Conn;

  // One request and its response. The parser hands the response to it (ResponseSink), and it
  // hands it on to the provider's handler.
  // Its deadlines' times (started, last_activity, connected, got_status, paused) are the base's.
  struct Transfer final : ResponseSink, TransferTimes {
    Impl* owner = nullptr;
    TransferId id = 0;
    HttpRequest request;
    std::shared_ptr<HttpResponseHandler> handler;  // null once aborted or ended
    std::shared_ptr<const Target> target;
    std::string head;
    std::size_t sent = 0;  // bytes of head + body written
    Conn* conn = nullptr;
    bool retried = false;  // sent again once, after a pooled connection turned out dead
    TimerId watchdog = 0;
    Clock::time_point watchdog_due;

    void on_head(int status, Headers&& headers) override {
      got_status = true;
      last_activity = owner->loop.now();
      // From here on the idle deadline counts: sooner than the first-byte one, it is due first.
      if (last_activity + request.idle_timeout < watchdog_due) {
        owner->loop.cancel(watchdog);
        owner->arm(*this, last_activity + request.idle_timeout);
      }
      auto keep = handler;  // the handler may abort (and drop its reference) re-entrantly
      if (keep) keep->on_status(status, headers);
    }
    void on_body(std::string_view bytes) override {
      last_activity = owner->loop.now();
      auto keep = handler;
      if (keep) keep->on_data(bytes);
    }
    bool wants_more() const override { return handler && !paused; }
  };

  // One connection to a backend: busy with one transfer, or idle in its origin's pool.
  struct Conn final : IoWatcher {
    Impl* owner = nullptr;
    int fd = -1;
    std::string origin;
    std::uint16_t port = 0;
    Resolver::Addresses addresses;  // what is left to try while connecting
    std::size_t next_address = 0;
    bool connecting = true;
    bool closed = false;
    bool reused = false;  // served a response before this one
    Transfer* transfer = nullptr;
    std::string in;  // response bytes read but not yet parsed (a partial head, say)
    ResponseParser parser;
    Clock::time_point idle_since;
    void on_io(std::uint32_t events) override { owner->on_io(*this, events); }
  };

  // Entry points from the loop count themselves, so transfers ended inside callbacks are freed
  // only once nothing on the stack can still point at them.
  struct Entry {
    explicit Entry(Impl& i) : impl(i) { ++impl.depth; }
    ~Entry() {
      if (--impl.depth == 0) impl.reap();
    }
    Impl& impl;
  };

  explicit Impl(EventLoop& l) : loop(l), resolver(l), scratch(new char[kReadChunk]), self(std::make_shared<Impl*>(this)) {}

  EventLoop& loop;
  Resolver resolver;
  std::unique_ptr<char[]> scratch;
  std::shared_ptr<Impl*> self;  // work deferred to a later turn checks it is still there
  std::unordered_map<std::string, std::shared_ptr<const Target>> targets;  // null: not ours
  TransferId next_id = 1;
  std::unordered_map<TransferId, std::unique_ptr<Transfer>> transfers;
  std::unordered_map<Conn*, std::shared_ptr<Conn>> conns;
  std::unordered_map<std::string, std::vector<Conn*>> pool;  // idle, oldest first
  std::vector<TransferId> dead;
  std::vector<TransferId> reaping;
  int depth = 0;
  bool starting = false;  // inside start(): an early failure is reported on the next turn
  TimerId sweep_timer = 0;
  std::uint64_t opened = 0;

  std::shared_ptr<const Target> target_for(const std::string& url);
  void dispatch(Transfer& t);
  void connect_new(Transfer& t);
  void open_conn(Transfer& t, Resolver::Addresses addresses, std::size_t from);
  void attach(Transfer& t, Conn& c);
  Transfer* detach(Conn& c);
  void on_io(Conn& c, std::uint32_t events);
  void finish_connect(Conn& c);
  void send(Conn& c);
  void read(Conn& c, bool drain);
  void feed(Conn& c, std::string_view bytes);
  void complete(Conn& c);
  void at_eof(Conn& c);
  void lost(Conn& c, const std::string& detail);
  void to_pool(Conn& c);
  void close_conn(Conn& c);
  void sweep();
  void fail(Transfer& t, TransferError error, std::string detail);
  void end(Transfer& t, TransferError error, std::string_view detail);
  void arm(Transfer& t, Clock::time_point due);
  void on_watchdog(TransferId id);
  void reap();
  void drop_all();
};

std::shared_ptr<const Target> Http1Client::Impl::target_for(const std::string& url) {
  if (auto it = targets.find(url); it != targets.end()) return it->second;
  std::shared_ptr<const Target> t;
  if (auto parsed = parse_plain_http_url(url)) t = std::make_shared<Target>(Target{*parsed, parsed->host + ":" + std::to_string(parsed->port)});
  if (targets.size() >= kMaxCachedUrls) targets.clear();  // not a handful after all: start over
  targets.emplace(url, t);
  return t;
}

Http1Client::Http1Client(EventLoop& loop) : impl_(std::make_unique<Impl>(loop)) {}

Http1Client::~Http1Client() {
  drop_all();
  while (!impl_->conns.empty()) impl_->close_conn(*impl_->conns.begin()->first);
  if (impl_->sweep_timer) impl_->loop.cancel(impl_->sweep_timer);
}

bool Http1Client::serves(const std::string& url) { return impl_->target_for(url) != nullptr; }
void Http1Client::drop_all() { impl_->drop_all(); }
std::size_t Http1Client::open_connections() const { return impl_->conns.size(); }
std::uint64_t Http1Client::connections_opened() const { return impl_->opened; }

void Http1Client::Impl::drop_all() {
  for (auto& [id, t] : transfers) {
    if (t->watchdog) loop.cancel(t->watchdog);
    t->watchdog = 0;
    t->handler.reset();
    if (t->conn) {
      Conn& c = *t->conn;
      detach(c);
      close_conn(c);
    }
  }
  if (depth == 0) transfers.clear();
  else
    for (auto& [id, t] : transfers) dead.push_back(id);
}

TransferId Http1Client::start(HttpRequest request, std::shared_ptr<HttpResponseHandler> handler) {
  Impl& i = *impl_;
  auto owned = std::make_unique<Impl::Transfer>();
  Impl::Transfer& t = *owned;
  t.owner = &i;
  t.id = i.next_id++;
  t.request = std::move(request);
  t.handler = std::move(handler);
  t.started = t.last_activity = i.loop.now();
  i.transfers.emplace(t.id, std::move(owned));
  t.target = i.target_for(t.request.url);
  i.starting = true;
  std::string error;
  if (!t.target) {
    i.fail(t, TransferError::kConnect, "the URL '" + t.request.url + "' is not a plain http:// URL");
  } else if (!build_request_head(t.request, t.target->url, t.head, error)) {
    i.fail(t, TransferError::kProtocol, error);
  } else {
    i.arm(t, t.started + std::min(t.request.connect_timeout, t.request.first_byte_timeout));
    i.dispatch(t);
  }
  i.starting = false;
  return t.id;
}

void Http1Client::abort(TransferId id) {
  Impl& i = *impl_;
  auto it = i.transfers.find(id);
  if (it == i.transfers.end()) return;
  Impl::Entry entry(i);
  Impl::Transfer& t = *it->second;
  t.handler.reset();
  if (t.watchdog) i.loop.cancel(t.watchdog);
  t.watchdog = 0;
  if (t.conn) {  // mid-exchange: the connection cannot carry another request
    Impl::Conn& c = *t.conn;
    i.detach(c);
    i.close_conn(c);
  }
  i.dead.push_back(id);
}

void Http1Client::pause(TransferId id) {
  auto it = impl_->transfers.find(id);
  if (it != impl_->transfers.end()) it->second->paused = true;
}

// Reading stopped with bytes possibly waiting in the buffer and the socket (edge-triggered: no
// new event will say so): pick up where it stopped, on the next turn.
void Http1Client::resume(TransferId id) {
  auto it = impl_->transfers.find(id);
  if (it == impl_->transfers.end() || !it->second->paused) return;
  it->second->paused = false;
  impl_->loop.defer([alive = std::weak_ptr<Impl*>(impl_->self), id] {
    auto self = alive.lock();
    if (!self) return;  // the client is gone
    Impl* i = *self;
    auto it = i->transfers.find(id);
    if (it == i->transfers.end()) return;
    Impl::Entry entry(*i);
    Impl::Transfer& t = *it->second;
    if (t.paused || !t.handler || !t.conn || t.conn->connecting) return;
    Impl::Conn& c = *t.conn;
    if (!c.in.empty()) i->feed(c, {});
    if (!c.closed && c.transfer == &t && !t.paused) i->read(c, true);
  });
}

// A pooled connection to the same origin if there is one (the newest: the least likely to have
// been closed by the backend), else a new one.
void Http1Client::Impl::dispatch(Transfer& t) {
  if (auto it = pool.find(t.target->origin); it != pool.end() && !it->second.empty()) {
    Conn* c = it->second.back();
    it->second.pop_back();
    c->reused = true;
    attach(t, *c);
    send(*c);
    return;
  }
  connect_new(t);
}

void Http1Client::Impl::connect_new(Transfer& t) {
  TransferId id = t.id;
  resolver.resolve(t.target->url.host, [this, id](const Resolver::Addresses& addresses, const std::string& error) {
    auto it = transfers.find(id);
    if (it == transfers.end() || !it->second->handler) return;
    Entry entry(*this);
    if (addresses.empty())
      fail(*it->second, TransferError::kConnect, error);
    else
      open_conn(*it->second, addresses, 0);
  });
}

void Http1Client::Impl::open_conn(Transfer& t, Resolver::Addresses addresses, std::size_t from) {
  int last_errno = 0;
  for (std::size_t i = from; i < addresses.size(); ++i) {
    SocketAddress a = addresses[i];
    if (a.storage.ss_family == AF_INET)
      reinterpret_cast<sockaddr_in*>(&a.storage)->sin_port = htons(t.target->url.port);
    else
      reinterpret_cast<sockaddr_in6*>(&a.storage)->sin6_port = htons(t.target->url.port);
    int fd = ::socket(a.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      last_errno = errno;
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&a.storage), a.length);
    if (rc != 0 && errno != EINPROGRESS) {
      last_errno = errno;
      ::close(fd);
      continue;
    }
    auto c = std::make_shared<Conn>();
    c->owner = this;
    c->fd = fd;
    c->origin = t.target->origin;
    c->port = t.target->url.port;
    c->addresses = std::move(addresses);
    c->next_address = i + 1;
    Conn& conn = *c;
    conns.emplace(c.get(), std::move(c));
    ++opened;
    // Registered once for everything it will ever wait for; edge-triggered, so a busy
    // connection costs no epoll_ctl per request.
    loop.watch(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, &conn);
    attach(t, conn);
    if (rc == 0) finish_connect(conn);
    return;
  }
  fail(t, TransferError::kConnect,
       "could not connect to " + t.target->url.authority + ": " + std::strerror(last_errno ? last_errno : ECONNREFUSED));
}

void Http1Client::Impl::attach(Transfer& t, Conn& c) {
  t.conn = &c;
  t.sent = 0;
  t.connected = !c.connecting;
  c.transfer = &t;
  c.in.clear();
  c.parser.start(t.request.method == "HEAD");
}

Http1Client::Impl::Transfer* Http1Client::Impl::detach(Conn& c) {
  Transfer* t = c.transfer;
  if (t) t->conn = nullptr;
  c.transfer = nullptr;
  return t;
}

void Http1Client::Impl::on_io(Conn& c, std::uint32_t events) {
  if (c.closed) return;  // collected before it closed this turn: the fd may be someone else's
  Entry entry(*this);
  if (c.connecting) {
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) finish_connect(c);
    return;
  }
  bool readable = events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
  if (!c.transfer) {  // idle: the backend closed it, or sent what nobody asked for
    if (readable) close_conn(c);
    return;
  }
  Transfer& t = *c.transfer;
  if ((events & EPOLLOUT) && t.sent < t.head.size() + t.request.body.size()) send(c);
  if (readable && !c.closed && c.transfer) read(c, events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR));
}

void Http1Client::Impl::finish_connect(Conn& c) {
  int error = 0;
  socklen_t len = sizeof error;
  if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) error = errno;
  if (error != 0) {
    Transfer* t = detach(c);
    auto addresses = std::move(c.addresses);
    std::size_t next = c.next_address;
    close_conn(c);
    if (!t) return;
    if (next < addresses.size()) return open_conn(*t, std::move(addresses), next);
    return fail(*t, TransferError::kConnect, "could not connect to " + t->target->url.authority + ": " + std::strerror(error));
  }
  c.connecting = false;
  c.addresses.clear();
  if (!c.transfer) return close_conn(c);
  c.transfer->connected = true;
  send(c);
}

// Head and body in one sendmsg (no copy of the body); what the socket does not take now goes
// when it says it is writable again.
void Http1Client::Impl::send(Conn& c) {
  Transfer& t = *c.transfer;
  const std::string& body = t.request.body;
  std::size_t total = t.head.size() + body.size();
  while (t.sent < total) {
    iovec iov[2];
    int n = 0;
    if (t.sent < t.head.size()) {
      iov[n++] = {const_cast<char*>(t.head.data()) + t.sent, t.head.size() - t.sent};
      if (!body.empty()) iov[n++] = {const_cast<char*>(body.data()), body.size()};
    } else {
      std::size_t at = t.sent - t.head.size();
      iov[n++] = {const_cast<char*>(body.data()) + at, body.size() - at};
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<std::size_t>(n);
    ssize_t w = ::sendmsg(c.fd, &msg, MSG_NOSIGNAL);
    if (w > 0) {
      t.sent += static_cast<std::size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    return lost(c, std::string("sending the request failed: ") + std::strerror(errno));
  }
}

// Reads until the socket is drained: a read shorter than asked means it is (plain TCP), unless
// the backend also hung up, then on to the end of the stream.
void Http1Client::Impl::read(Conn& c, bool drain) {
  while (!c.closed && c.transfer && !c.transfer->paused) {
    ssize_t n = ::recv(c.fd, scratch.get(), kReadChunk, 0);
    if (n > 0) {
      Transfer* t = c.transfer;
      feed(c, std::string_view(scratch.get(), static_cast<std::size_t>(n)));
      if (c.closed || c.transfer != t) return;
      if (static_cast<std::size_t>(n) < kReadChunk && !drain) return;
      continue;
    }
    if (n == 0) return at_eof(c);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    return lost(c, std::string("reading the response failed: ") + std::strerror(errno));
  }
}

void Http1Client::Impl::feed(Conn& c, std::string_view bytes) {
  Transfer& t = *c.transfer;
  bool buffered = !c.in.empty();
  if (buffered) c.in.append(bytes);
  std::string_view data = buffered ? std::string_view(c.in) : bytes;
  std::size_t used = 0;
  auto status = c.parser.parse(data, used, t);
  if (c.closed) return;  // aborted from a callback: the connection went with it
  if (buffered)
    c.in.erase(0, used);
  else
    c.in.assign(data.substr(used));
  switch (status) {
    case ResponseParser::Status::kNeedMore:
    case ResponseParser::Status::kStopped:
      return;
    case ResponseParser::Status::kComplete:
      return complete(c);
    case ResponseParser::Status::kError: {
      std::string error = c.parser.error();
      detach(c);
      close_conn(c);
      return fail(t, TransferError::kProtocol, "the backend's response cannot be framed: " + error);
    }
  }
}

// The response is whole: the connection goes back to the pool first (the handler may start the
// next request at once and should find it there), then the handler hears of the end.
void Http1Client::Impl::complete(Conn& c) {
  Transfer& t = *detach(c);
  // An answer that came before the whole request went out (a 413, say) leaves the connection
  // mid-request: never reused.
  bool reusable = c.parser.keep_alive() && c.in.empty() && t.sent == t.head.size() + t.request.body.size();
  if (reusable)
    to_pool(c);
  else
    close_conn(c);
  end(t, TransferError::kNone, "");
}

void Http1Client::Impl::at_eof(Conn& c) {
  if (!c.parser.got_any()) return lost(c, "the backend closed the connection without answering");
  Transfer& t = *c.transfer;
  auto status = c.parser.parse_eof(t);
  detach(c);
  close_conn(c);
  if (status == ResponseParser::Status::kComplete) return end(t, TransferError::kNone, "");
  fail(t, TransferError::kProtocol, c.parser.error());
}

// The connection broke. A pooled connection that broke before any byte of the answer came back
// was most likely closed by the backend while idle (the race every keep-alive client has): the
// request goes once more, on a new connection, as curl and browsers do.
void Http1Client::Impl::lost(Conn& c, const std::string& detail) {
  Transfer* t = detach(c);
  bool retry = t && c.reused && !t->retried && !c.parser.got_any();
  close_conn(c);
  if (!t) return;
  if (retry) {
    t->retried = true;
    t->connected = false;
    return connect_new(*t);
  }
  fail(*t, TransferError::kProtocol, detail);
}

void Http1Client::Impl::to_pool(Conn& c) {
  c.idle_since = loop.now();
  auto& idle = pool[c.origin];
  if (idle.size() >= kMaxIdlePerOrigin) close_conn(*idle.front());
  idle.push_back(&c);
  if (!sweep_timer) sweep_timer = loop.after(kSweepEvery, [this] { sweep(); });
}

// Idle connections past their time are closed, oldest first.
void Http1Client::Impl::sweep() {
  sweep_timer = 0;
  auto now = loop.now();
  bool any = false;
  for (auto& [origin, idle] : pool) {
    while (!idle.empty() && now - idle.front()->idle_since >= kMaxIdle) close_conn(*idle.front());
    any = any || !idle.empty();
  }
  if (any) sweep_timer = loop.after(kSweepEvery, [this] { sweep(); });
}

void Http1Client::Impl::close_conn(Conn& c) {
  if (c.closed) return;
  c.closed = true;
  if (!c.transfer) {
    if (auto it = pool.find(c.origin); it != pool.end()) {
      auto& idle = it->second;
      if (auto at = std::find(idle.begin(), idle.end(), &c); at != idle.end()) idle.erase(at);
    }
  }
  loop.unwatch(c.fd);
  ::close(c.fd);
  auto it = conns.find(&c);
  if (it == conns.end()) return;
  loop.retire(std::move(it->second));  // events already collected for it this turn see `closed`
  conns.erase(it);
}

void Http1Client::Impl::fail(Transfer& t, TransferError error, std::string detail) {
  if (starting) {  // never call a handler back from inside start()
    TransferId id = t.id;
    loop.defer([alive = std::weak_ptr<Impl*>(self), id, error, detail = std::move(detail)] {
      auto client = alive.lock();
      if (!client) return;
      Impl& i = **client;
      auto it = i.transfers.find(id);
      if (it == i.transfers.end()) return;
      Entry entry(i);
      i.fail(*it->second, error, detail);
    });
    return;
  }
  if (t.conn) {
    Conn& c = *t.conn;
    detach(c);
    close_conn(c);
  }
  end(t, error, detail);
}

void Http1Client::Impl::end(Transfer& t, TransferError error, std::string_view detail) {
  if (t.watchdog) loop.cancel(t.watchdog);
  t.watchdog = 0;
  dead.push_back(t.id);
  auto handler = std::move(t.handler);
  t.handler.reset();
  if (handler) handler->on_end(error, detail);
}

void Http1Client::Impl::arm(Transfer& t, Clock::time_point due) {
  TransferId id = t.id;
  t.watchdog_due = due;
  t.watchdog = loop.at(due, [this, id] { on_watchdog(id); });
}

// Fires at the connect deadline, the first-byte deadline, then at each idle deadline. Idle
// means "nothing read for idle_timeout": a stream that keeps sending is never cut.
void Http1Client::Impl::on_watchdog(TransferId id) {
  auto it = transfers.find(id);
  if (it == transfers.end()) return;
  Entry entry(*this);
  Transfer& t = *it->second;
  t.watchdog = 0;
  if (!t.handler) return;
  auto check = check_deadlines(t.request, t, loop.now());
  if (check.error != TransferError::kNone) return fail(t, check.error, check.detail);
  arm(t, check.next);
}

void Http1Client::Impl::reap() {
  while (!dead.empty()) {
    reaping.swap(dead);  // both keep their capacity: no allocation per request
    for (TransferId id : reaping) {
      auto it = transfers.find(id);
      if (it == transfers.end()) continue;
      if (it->second->watchdog) loop.cancel(it->second->watchdog);
      transfers.erase(it);
    }
    reaping.clear();
  }
}

}  // namespace plexus
