#include "upstream/curl_client.hpp"

#include <curl/curl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "upstream/transfer_deadlines.hpp"

namespace plexus {
namespace {

using Clock = std::chrono::steady_clock;

// Its deadlines' times (last_activity, got_status, paused...) are the base's; libcurl enforces the
// connect timeout itself, so a transfer counts as connected from the start.
struct Transfer : TransferTimes {
  TransferId id = 0;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  HttpRequest request;
  std::shared_ptr<HttpResponseHandler> handler;  // null once aborted or ended
  Headers response_headers;
  TimerId watchdog = 0;
};

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n'))
    --e;
  return std::string(s.substr(b, e - b));
}

std::uint32_t epoll_mask(int curl_what) {
  std::uint32_t events = 0;
  if (curl_what & CURL_POLL_IN) events |= EPOLLIN;
  if (curl_what & CURL_POLL_OUT) events |= EPOLLOUT;
  return events;
}

}  // namespace

struct CurlClient::Impl {
  // One upstream socket as curl and epoll see it. A pooled connection between two transfers is
  // not wanted by curl but stays registered, so reusing it costs no epoll_ctl; if it stirs while
  // idle (the backend closed it), it is unregistered then, once.
  struct Socket final : IoWatcher {
    Impl* owner = nullptr;
    curl_socket_t fd = -1;
    std::uint32_t wanted = 0;      // what curl asked for last (0: nothing, idle in the pool)
    std::uint32_t registered = 0;  // what epoll watches now (0: not in the epoll set)
    bool closed = false;           // curl closed the fd; the record lives to the end of the turn
    void on_io(std::uint32_t events) override { owner->on_socket_io(*this, events); }
  };

  explicit Impl(EventLoop& l) : loop(l) {}

  EventLoop& loop;
  CURLM* multi = nullptr;
  TimerId curl_timer = 0;
  std::unordered_map<curl_socket_t, std::shared_ptr<Socket>> sockets;

  // Easy handles of finished transfers, reset and kept for the next ones: curl_easy_init costs
  // more than curl_easy_reset (a large zeroed struct and its defaults).
  std::vector<CURL*> spare_handles;
  static constexpr std::size_t kMaxSpareHandles = 256;
  // No proxy in the environment (read once): tell curl, so it stops looking at every transfer.
  bool no_env_proxy = true;
  // Upstream URLs parsed once: a transfer given a parsed URL (CURLOPT_CURLU) skips curl's URL
  // parser. A handful of distinct URLs per router (one per upstream path), so no eviction.
  std::unordered_map<std::string, CURLU*> parsed_urls;
  CURLU* parsed_url(const std::string& url);

  TransferId next_transfer = 1;
  std::unordered_map<TransferId, std::unique_ptr<Transfer>> transfers;
  bool in_perform = false;
  std::vector<TransferId> finished;  // ended or aborted during perform: removed afterwards

  void on_socket_io(Socket& s, std::uint32_t events);
  void curl_action(curl_socket_t fd, int flags);
  void collect_done();
  void end_transfer(Transfer& t, TransferError error, std::string detail);
  void remove_transfer(TransferId id);
  void remove_finished();
  void release(Transfer& t);
  void arm_watchdog(Transfer& t, Clock::time_point due);
  void on_watchdog(TransferId id);
  void set_interest(curl_socket_t fd, std::uint32_t wanted);

  static int socket_cb(CURL*, curl_socket_t fd, int what, void* user, void* socket_data);
  static int timer_cb(CURLM*, long timeout_ms, void* user);
  static int close_socket_cb(void* user, curl_socket_t fd);
  static size_t header_cb(char* data, size_t size, size_t n, void* user);
  static size_t write_cb(char* data, size_t size, size_t n, void* user);
};

CurlClient::CurlClient(EventLoop& loop) : impl_(std::make_unique<Impl>(loop)) {
  static std::once_flag curl_init;
  std::call_once(curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  impl_->multi = curl_multi_init();
  if (!impl_->multi) throw std::runtime_error("curl_multi_init failed");
  curl_multi_setopt(impl_->multi, CURLMOPT_SOCKETFUNCTION, &Impl::socket_cb);
  curl_multi_setopt(impl_->multi, CURLMOPT_SOCKETDATA, impl_.get());
  curl_multi_setopt(impl_->multi, CURLMOPT_TIMERFUNCTION, &Impl::timer_cb);
  curl_multi_setopt(impl_->multi, CURLMOPT_TIMERDATA, impl_.get());
  for (const char* name : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"})
    if (const char* v = std::getenv(name); v && *v) impl_->no_env_proxy = false;
}

CurlClient::~CurlClient() {
  drop_all();
  curl_multi_cleanup(impl_->multi);  // closes pooled connections through close_socket_cb
  for (auto& [url, u] : impl_->parsed_urls) curl_url_cleanup(u);
}

CURLU* CurlClient::Impl::parsed_url(const std::string& url) {
  if (auto it = parsed_urls.find(url); it != parsed_urls.end()) return it->second;
  if (parsed_urls.size() >= 1024) return nullptr;  // not a handful after all: let curl parse
  CURLU* u = curl_url();
  if (!u || curl_url_set(u, CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
    curl_url_cleanup(u);
    return nullptr;  // curl reports the bad URL itself when it gets it as text
  }
  parsed_urls.emplace(url, u);
  return u;
}

void CurlClient::drop_all() {
  for (auto& [id, t] : impl_->transfers) impl_->release(*t);
  impl_->transfers.clear();
  for (CURL* e : impl_->spare_handles) curl_easy_cleanup(e);
  impl_->spare_handles.clear();
}

// The one place a transfer's curl resources are given back.
void CurlClient::Impl::release(Transfer& t) {
  if (t.watchdog) loop.cancel(t.watchdog);
  t.watchdog = 0;
  curl_multi_remove_handle(multi, t.easy);
  if (spare_handles.size() < kMaxSpareHandles) {
    curl_easy_reset(t.easy);
    spare_handles.push_back(t.easy);
  } else {
    curl_easy_cleanup(t.easy);
  }
  t.easy = nullptr;
  curl_slist_free_all(t.headers);
  t.headers = nullptr;
}

void CurlClient::Impl::on_socket_io(Socket& s, std::uint32_t events) {
  // An event collected before curl closed this socket in the same turn: its fd number may
  // already belong to someone else (a client that was just accepted), so touch nothing.
  if (s.closed) return;
  if (s.wanted == 0) {  // an idle pooled connection stirred: stop watching until curl asks
    loop.unwatch(s.fd);
    s.registered = 0;
    return;
  }
  int flags = 0;
  if (events & EPOLLIN) flags |= CURL_CSELECT_IN;
  if (events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
  if (events & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
  curl_action(s.fd, flags);
}

void CurlClient::Impl::curl_action(curl_socket_t fd, int flags) {
  int still_running = 0;
  in_perform = true;
  curl_multi_socket_action(multi, fd, flags, &still_running);
  in_perform = false;
  collect_done();
  remove_finished();
}

void CurlClient::Impl::remove_finished() {
  for (TransferId id : finished) remove_transfer(id);
  finished.clear();
}

void CurlClient::Impl::set_interest(curl_socket_t fd, std::uint32_t wanted) {
  auto it = sockets.find(fd);
  if (it == sockets.end()) {
    if (wanted == 0) return;
    auto s = std::make_shared<Socket>();
    s->owner = this;
    s->fd = fd;
    it = sockets.emplace(fd, std::move(s)).first;
  }
  Socket& s = *it->second;
  s.wanted = wanted;
  if (wanted == 0 || wanted == s.registered) return;
  if (s.registered == 0)
    loop.watch(fd, wanted, &s);
  else
    loop.modify(fd, wanted, &s);
  s.registered = wanted;
}

int CurlClient::Impl::socket_cb(CURL*, curl_socket_t fd, int what, void* user, void*) {
  auto* self = static_cast<Impl*>(user);
  self->set_interest(fd, what == CURL_POLL_REMOVE ? 0 : epoll_mask(what));
  return 0;
}

// curl closes a socket: forget it (closing removes it from the epoll set). The record lives to
// the end of the turn, in case an event for it was already collected.
int CurlClient::Impl::close_socket_cb(void* user, curl_socket_t fd) {
  auto* self = static_cast<Impl*>(user);
  if (auto it = self->sockets.find(fd); it != self->sockets.end()) {
    it->second->closed = true;
    self->loop.retire(it->second);
    self->sockets.erase(it);
  }
  return close(fd);
}

// libcurl asks to be called back after timeout_ms (or never, with -1). It must not be called
// from inside this callback, so a loop timer does it.
int CurlClient::Impl::timer_cb(CURLM*, long timeout_ms, void* user) {
  auto* self = static_cast<Impl*>(user);
  if (self->curl_timer) self->loop.cancel(self->curl_timer);
  self->curl_timer = 0;
  if (timeout_ms >= 0)
    self->curl_timer = self->loop.after(std::chrono::milliseconds(timeout_ms), [self] {
      self->curl_timer = 0;
      self->curl_action(CURL_SOCKET_TIMEOUT, 0);
    });
  return 0;
}

size_t CurlClient::Impl::header_cb(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  if (!t->handler) return 0;  // aborted: makes curl stop the transfer
  t->last_activity = Clock::now();
  std::string_view line(data, len);
  if (line.rfind("HTTP/", 0) == 0) {  // a new status line (after 100-continue or a redirect)
    t->response_headers.clear();
    return len;
  }
  if (line == "\r\n" || line == "\n") {
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && !t->got_status) {
      t->got_status = true;
      auto handler = t->handler;  // the handler may abort (and reset t->handler) re-entrantly
      handler->on_status(static_cast<int>(status), t->response_headers);
    }
    return len;
  }
  auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name = trim(line.substr(0, colon));
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    t->response_headers.emplace_back(std::move(name), trim(line.substr(colon + 1)));
  }
  return len;
}

size_t CurlClient::Impl::write_cb(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  if (!t->handler) return 0;
  t->last_activity = Clock::now();
  auto handler = t->handler;
  handler->on_data(std::string_view(data, len));
  return len;
}

TransferId CurlClient::start(HttpRequest request, std::shared_ptr<HttpResponseHandler> handler) {
  auto t = std::make_unique<Transfer>();
  t->id = impl_->next_transfer++;
  t->request = std::move(request);
  t->handler = std::move(handler);
  if (impl_->spare_handles.empty()) {
    t->easy = curl_easy_init();
  } else {
    t->easy = impl_->spare_handles.back();
    impl_->spare_handles.pop_back();
  }
  CURL* e = t->easy;
  if (impl_->no_env_proxy) curl_easy_setopt(e, CURLOPT_PROXY, "");
  const HttpRequest& r = t->request;
  if (CURLU* u = impl_->parsed_url(r.url))
    curl_easy_setopt(e, CURLOPT_CURLU, u);
  else
    curl_easy_setopt(e, CURLOPT_URL, r.url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Impl::header_cb);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Impl::write_cb);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, &Impl::close_socket_cb);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, impl_.get());
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(r.connect_timeout.count()));
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  if (r.method == "POST") {
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r.body.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
  } else if (r.method != "GET") {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r.method.c_str());
  }
  // An empty "Expect:" stops curl from waiting for 100-continue on large bodies.
  t->headers = curl_slist_append(t->headers, "Expect:");
  for (const auto& [name, value] : r.headers)
    t->headers = curl_slist_append(t->headers, (name + ": " + value).c_str());
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);

  t->started = t->last_activity = impl_->loop.now();
  t->connected = true;
  impl_->arm_watchdog(*t, t->started + r.first_byte_timeout);
  TransferId id = t->id;
  impl_->transfers.emplace(id, std::move(t));
  curl_multi_add_handle(impl_->multi, e);
  return id;
}

void CurlClient::Impl::arm_watchdog(Transfer& t, Clock::time_point due) {
  TransferId id = t.id;
  t.watchdog = loop.at(due, [this, id] { on_watchdog(id); });
}

// Fires at the first-byte deadline, then at each idle deadline (transfer_deadlines.hpp).
void CurlClient::Impl::on_watchdog(TransferId id) {
  auto it = transfers.find(id);
  if (it == transfers.end()) return;
  Transfer& t = *it->second;
  t.watchdog = 0;
  if (!t.handler) return;
  auto check = check_deadlines(t.request, t, loop.now());
  if (check.error == TransferError::kNone) return arm_watchdog(t, check.next);
  end_transfer(t, check.error, check.detail);
  remove_transfer(id);
}

void CurlClient::Impl::end_transfer(Transfer& t, TransferError error, std::string detail) {
  auto handler = std::move(t.handler);
  t.handler.reset();
  if (handler) handler->on_end(error, detail);
}

void CurlClient::Impl::collect_done() {
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    Transfer* t = nullptr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
    if (!t) continue;
    CURLcode rc = msg->data.result;
    TransferError err = TransferError::kNone;
    std::string detail;
    if (rc != CURLE_OK) {
      detail = curl_easy_strerror(rc);
      switch (rc) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
          err = TransferError::kConnect;
          break;
        case CURLE_OPERATION_TIMEDOUT:
          err = t->got_status ? TransferError::kIdleTimeout : TransferError::kConnectTimeout;
          break;
        default:
          err = TransferError::kProtocol;
      }
    } else if (!t->got_status) {
      err = TransferError::kProtocol;
      detail = "response ended before its headers";
    }
    TransferId id = t->id;  // on_end may abort (and free) this very transfer
    finished.push_back(id);
    end_transfer(*t, err, std::move(detail));
  }
}

void CurlClient::Impl::remove_transfer(TransferId id) {
  auto it = transfers.find(id);
  if (it == transfers.end()) return;
  release(*it->second);
  transfers.erase(it);
}

void CurlClient::pause(TransferId id) {
  auto it = impl_->transfers.find(id);
  if (it == impl_->transfers.end() || it->second->paused) return;
  it->second->paused = true;
  curl_easy_pause(it->second->easy, CURLPAUSE_RECV);
}

// Unpausing may deliver buffered data at once, through the write callback: treat it like a turn
// of the loop so that removals requested from those callbacks wait until it returns.
void CurlClient::resume(TransferId id) {
  auto it = impl_->transfers.find(id);
  if (it == impl_->transfers.end() || !it->second->paused) return;
  it->second->paused = false;
  bool nested = impl_->in_perform;
  impl_->in_perform = true;
  curl_easy_pause(it->second->easy, CURLPAUSE_CONT);
  impl_->in_perform = nested;
  if (!nested) impl_->remove_finished();
}

void CurlClient::abort(TransferId id) {
  auto it = impl_->transfers.find(id);
  if (it == impl_->transfers.end()) return;
  it->second->handler.reset();
  // Removing an easy handle from inside one of its own callbacks is not allowed: defer it.
  if (impl_->in_perform)
    impl_->finished.push_back(id);
  else
    impl_->remove_transfer(id);
}

}  // namespace plexus
