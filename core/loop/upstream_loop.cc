#include "loop/upstream_loop.hpp"

#include <curl/curl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace plexus {
namespace {

using Clock = std::chrono::steady_clock;

struct Transfer {
  TransferId id = 0;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  HttpRequest request;
  std::shared_ptr<HttpResponseHandler> handler;  // null once aborted or ended
  Headers response_headers;
  bool got_status = false;
  Clock::time_point last_activity;
  TimerId watchdog = 0;
  bool paused = false;  // the client is not reading: the idle watchdog must not fire
  TransferError failure = TransferError::kNone;  // set by the watchdog before removal
};

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n'))
    --e;
  return std::string(s.substr(b, e - b));
}

}  // namespace

struct UpstreamLoop::Impl {
  CURLM* multi = nullptr;
  // libcurl's socket interface on our own epoll: each turn touches only the sockets that are
  // ready, where curl_multi_perform + curl_multi_poll would walk every transfer and poll() every
  // socket. That is what keeps hundreds of concurrent streams cheap.
  int epoll_fd = -1;
  int wake_fd = -1;  // eventfd: other threads' post() wakes epoll_wait
  bool curl_timer_armed = false;
  Clock::time_point curl_deadline;
  std::thread thread;
  std::atomic<bool> running{false};
  std::thread::id loop_thread_id;

  std::mutex inbox_mu;
  std::vector<std::function<void()>> inbox;

  TimerId next_timer = 1;
  std::map<std::pair<Clock::time_point, TimerId>, std::function<void()>> timers;
  std::unordered_map<TimerId, Clock::time_point> timer_due;

  TransferId next_transfer = 1;
  std::unordered_map<TransferId, std::unique_ptr<Transfer>> transfers;
  bool in_perform = false;
  std::vector<TransferId> finished;  // ended or aborted during perform: removed afterwards

  UpstreamLoop* owner = nullptr;

  void run();
  void wait_for_events();
  void curl_action(curl_socket_t fd, int flags);
  void run_due_timers();
  void drain_inbox();
  void collect_done();
  void end_transfer(Transfer& t, TransferError error, std::string detail);
  void remove_transfer(TransferId id);
  void arm_watchdog(Transfer& t, Clock::time_point due);
  void on_watchdog(TransferId id);

  static int socket_cb(CURL*, curl_socket_t fd, int what, void* user, void* socket_data);
  static int timer_cb(CURLM*, long timeout_ms, void* user);
  static size_t header_cb(char* data, size_t size, size_t n, void* user);
  static size_t write_cb(char* data, size_t size, size_t n, void* user);
};

UpstreamLoop::UpstreamLoop() : impl_(std::make_unique<Impl>()) {
  static std::once_flag curl_init;
  std::call_once(curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  impl_->multi = curl_multi_init();
  impl_->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  impl_->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (!impl_->multi || impl_->epoll_fd < 0 || impl_->wake_fd < 0)
    throw std::runtime_error("cannot create the upstream loop (curl_multi_init, epoll, eventfd)");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = impl_->wake_fd;
  epoll_ctl(impl_->epoll_fd, EPOLL_CTL_ADD, impl_->wake_fd, &ev);
  curl_multi_setopt(impl_->multi, CURLMOPT_SOCKETFUNCTION, &Impl::socket_cb);
  curl_multi_setopt(impl_->multi, CURLMOPT_SOCKETDATA, impl_.get());
  curl_multi_setopt(impl_->multi, CURLMOPT_TIMERFUNCTION, &Impl::timer_cb);
  curl_multi_setopt(impl_->multi, CURLMOPT_TIMERDATA, impl_.get());
  impl_->owner = this;
}

UpstreamLoop::~UpstreamLoop() {
  stop();
  for (auto& [id, t] : impl_->transfers) {
    curl_multi_remove_handle(impl_->multi, t->easy);
    curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
  }
  impl_->transfers.clear();
  curl_multi_cleanup(impl_->multi);
  close(impl_->epoll_fd);
  close(impl_->wake_fd);
}

void UpstreamLoop::start() {
  if (impl_->running.exchange(true)) return;
  impl_->thread = std::thread([this] { impl_->run(); });
}

void UpstreamLoop::stop() {
  if (impl_->running.exchange(false)) {
    std::uint64_t one = 1;
    (void)!write(impl_->wake_fd, &one, sizeof one);
    if (impl_->thread.joinable()) impl_->thread.join();
  }
  // Drop all pending work now, while the code it points into is still loaded: handlers, timer
  // callbacks and posted closures may live in adapter libraries that the caller unloads next.
  for (auto& [id, t] : impl_->transfers) {
    curl_multi_remove_handle(impl_->multi, t->easy);
    curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
  }
  impl_->transfers.clear();
  impl_->timers.clear();
  impl_->timer_due.clear();
  std::vector<std::function<void()>> inbox;
  {
    std::lock_guard lock(impl_->inbox_mu);
    inbox.swap(impl_->inbox);
  }
}

void UpstreamLoop::post(std::function<void()> fn) {
  bool was_empty;
  {
    std::lock_guard lock(impl_->inbox_mu);
    was_empty = impl_->inbox.empty();
    impl_->inbox.push_back(std::move(fn));
  }
  // The loop drains the inbox before it sleeps, so only a post from another thread into an
  // empty inbox needs the wake-up syscall.
  if (was_empty && !in_loop_thread()) {
    std::uint64_t one = 1;
    (void)!write(impl_->wake_fd, &one, sizeof one);
  }
}

bool UpstreamLoop::in_loop_thread() const {
  return std::this_thread::get_id() == impl_->loop_thread_id;
}

TimerId UpstreamLoop::after(std::chrono::milliseconds delay, std::function<void()> fn) {
  auto due = Clock::now() + delay;
  TimerId id = impl_->next_timer++;
  impl_->timers.emplace(std::make_pair(due, id), std::move(fn));
  impl_->timer_due.emplace(id, due);
  return id;
}

void UpstreamLoop::cancel(TimerId id) {
  auto it = impl_->timer_due.find(id);
  if (it == impl_->timer_due.end()) return;
  impl_->timers.erase({it->second, id});
  impl_->timer_due.erase(it);
}

void UpstreamLoop::Impl::run_due_timers() {
  auto now = Clock::now();
  while (!timers.empty() && timers.begin()->first.first <= now) {
    auto node = timers.extract(timers.begin());
    timer_due.erase(node.key().second);
    node.mapped()();
  }
}

void UpstreamLoop::Impl::drain_inbox() {
  std::vector<std::function<void()>> work;
  {
    std::lock_guard lock(inbox_mu);
    work.swap(inbox);
  }
  for (auto& fn : work) fn();
}

void UpstreamLoop::Impl::run() {
  loop_thread_id = std::this_thread::get_id();
  while (running.load()) {
    drain_inbox();
    run_due_timers();
    if (curl_timer_armed && Clock::now() >= curl_deadline) {
      curl_timer_armed = false;
      curl_action(CURL_SOCKET_TIMEOUT, 0);
    }
    wait_for_events();
  }
}

void UpstreamLoop::Impl::wait_for_events() {
  int timeout_ms = 1000;
  auto now = Clock::now();
  auto until = [&](Clock::time_point t) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - now).count();
    // Round up, or a deadline 0.4 ms away would spin with a zero timeout until it passes.
    if (t > now && std::chrono::duration_cast<std::chrono::milliseconds>(t - now) < t - now) ++ms;
    return static_cast<int>(std::clamp<long long>(ms, 0, 1000));
  };
  if (!timers.empty()) timeout_ms = std::min(timeout_ms, until(timers.begin()->first.first));
  if (curl_timer_armed) timeout_ms = std::min(timeout_ms, until(curl_deadline));
  {
    std::lock_guard lock(inbox_mu);
    if (!inbox.empty()) timeout_ms = 0;
  }
  epoll_event events[256];
  int n = epoll_wait(epoll_fd, events, 256, timeout_ms);
  for (int i = 0; i < n; ++i) {
    int fd = events[i].data.fd;
    if (fd == wake_fd) {
      std::uint64_t count;
      (void)!read(wake_fd, &count, sizeof count);
      continue;
    }
    int flags = 0;
    if (events[i].events & EPOLLIN) flags |= CURL_CSELECT_IN;
    if (events[i].events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
    if (events[i].events & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
    curl_action(fd, flags);
  }
}

void UpstreamLoop::Impl::curl_action(curl_socket_t fd, int flags) {
  int still_running = 0;
  in_perform = true;
  curl_multi_socket_action(multi, fd, flags, &still_running);
  in_perform = false;
  collect_done();
  for (TransferId id : finished) remove_transfer(id);
  finished.clear();
}

int UpstreamLoop::Impl::socket_cb(CURL*, curl_socket_t fd, int what, void* user, void* socket_data) {
  auto* self = static_cast<Impl*>(user);
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(self->epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
    curl_multi_assign(self->multi, fd, nullptr);
    return 0;
  }
  epoll_event ev{};
  ev.data.fd = fd;
  if (what & CURL_POLL_IN) ev.events |= EPOLLIN;
  if (what & CURL_POLL_OUT) ev.events |= EPOLLOUT;
  if (socket_data) {
    epoll_ctl(self->epoll_fd, EPOLL_CTL_MOD, fd, &ev);
  } else {
    epoll_ctl(self->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
    curl_multi_assign(self->multi, fd, self);  // any non-null marker: "already in epoll"
  }
  return 0;
}

// libcurl asks to be called back after timeout_ms (or never, with -1). It must not be called
// from inside this callback, so the loop does it on its next turn.
int UpstreamLoop::Impl::timer_cb(CURLM*, long timeout_ms, void* user) {
  auto* self = static_cast<Impl*>(user);
  self->curl_timer_armed = timeout_ms >= 0;
  if (timeout_ms >= 0) self->curl_deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  return 0;
}

size_t UpstreamLoop::Impl::header_cb(char* data, size_t size, size_t n, void* user) {
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

size_t UpstreamLoop::Impl::write_cb(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  if (!t->handler) return 0;
  t->last_activity = Clock::now();
  auto handler = t->handler;
  handler->on_data(std::string_view(data, len));
  return len;
}

TransferId UpstreamLoop::start(HttpRequest request, std::shared_ptr<HttpResponseHandler> handler) {
  auto t = std::make_unique<Transfer>();
  t->id = impl_->next_transfer++;
  t->request = std::move(request);
  t->handler = std::move(handler);
  t->easy = curl_easy_init();
  CURL* e = t->easy;
  const HttpRequest& r = t->request;
  curl_easy_setopt(e, CURLOPT_URL, r.url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Impl::header_cb);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Impl::write_cb);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
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

  t->last_activity = Clock::now();
  impl_->arm_watchdog(*t, t->last_activity + r.first_byte_timeout);
  TransferId id = t->id;
  curl_multi_add_handle(impl_->multi, e);
  impl_->transfers.emplace(id, std::move(t));
  return id;
}

void UpstreamLoop::Impl::arm_watchdog(Transfer& t, Clock::time_point due) {
  TransferId id = t.id;
  auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(due - Clock::now());
  if (delay.count() < 0) delay = std::chrono::milliseconds(0);
  t.watchdog = owner->after(delay, [this, id] { on_watchdog(id); });
}

// Fires at the first-byte deadline, then at each idle deadline. Idle means "nothing read for
// idle_timeout": a healthy stream that keeps sending is never cut, however long it runs.
void UpstreamLoop::Impl::on_watchdog(TransferId id) {
  auto it = transfers.find(id);
  if (it == transfers.end()) return;
  Transfer& t = *it->second;
  t.watchdog = 0;
  if (!t.handler) return;
  auto now = Clock::now();
  if (!t.got_status) {
    end_transfer(t, TransferError::kFirstByteTimeout,
                 "no response within " + std::to_string(t.request.first_byte_timeout.count()) +
                     " ms");
    remove_transfer(id);
    return;
  }
  if (t.paused) {  // silence is ours, not the backend's
    t.last_activity = now;
    arm_watchdog(t, now + t.request.idle_timeout);
    return;
  }
  auto idle_due = t.last_activity + t.request.idle_timeout;
  if (now >= idle_due) {
    end_transfer(t, TransferError::kIdleTimeout,
                 "no data for " + std::to_string(t.request.idle_timeout.count()) + " ms");
    remove_transfer(id);
    return;
  }
  arm_watchdog(t, idle_due);
}

void UpstreamLoop::Impl::end_transfer(Transfer& t, TransferError error, std::string detail) {
  auto handler = std::move(t.handler);
  t.handler.reset();
  if (handler) handler->on_end(error, detail);
}

void UpstreamLoop::Impl::collect_done() {
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

void UpstreamLoop::Impl::remove_transfer(TransferId id) {
  auto it = transfers.find(id);
  if (it == transfers.end()) return;
  Transfer& t = *it->second;
  if (t.watchdog) owner->cancel(t.watchdog);
  curl_multi_remove_handle(multi, t.easy);
  curl_easy_cleanup(t.easy);
  curl_slist_free_all(t.headers);
  transfers.erase(it);
}

void UpstreamLoop::pause(TransferId id) {
  auto it = impl_->transfers.find(id);
  if (it == impl_->transfers.end() || it->second->paused) return;
  it->second->paused = true;
  curl_easy_pause(it->second->easy, CURLPAUSE_RECV);
}

// Unpausing may deliver buffered data at once, through the write callback: treat it like a turn
// of the loop so that removals requested from those callbacks wait until it returns.
void UpstreamLoop::resume(TransferId id) {
  auto it = impl_->transfers.find(id);
  if (it == impl_->transfers.end() || !it->second->paused) return;
  it->second->paused = false;
  bool nested = impl_->in_perform;
  impl_->in_perform = true;
  curl_easy_pause(it->second->easy, CURLPAUSE_CONT);
  impl_->in_perform = nested;
  if (!nested) {
    for (TransferId done : impl_->finished) impl_->remove_transfer(done);
    impl_->finished.clear();
  }
}

void UpstreamLoop::abort(TransferId id) {
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
