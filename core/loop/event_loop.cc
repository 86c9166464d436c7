#include "loop/event_loop.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

namespace plexus {
namespace {

thread_local EventLoop* current_loop = nullptr;

// The eventfd that post() writes to; its only job is to end epoll_wait.
class WakeWatcher final : public IoWatcher {
 public:
  explicit WakeWatcher(int fd) : fd_(fd) {}
  void on_io(std::uint32_t) override {
    std::uint64_t count;
    (void)!read(fd_, &count, sizeof count);
  }

 private:
  int fd_;
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             EventLoop::Clock::now().time_since_epoch())
      .count();
}

}  // namespace

EventLoop::EventLoop(std::size_t index) : index_(index) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) throw std::runtime_error("cannot create an event loop (epoll, eventfd)");
  auto wake = std::make_shared<WakeWatcher>(wake_fd_);
  watch(wake_fd_, EPOLLIN, wake.get());
  wake_watcher_ = std::move(wake);
}

EventLoop::~EventLoop() {
  drop_pending_work();
  close(epoll_fd_);
  close(wake_fd_);
}

void EventLoop::run() {
  current_loop = this;
  running_ = true;
  while (running_.load(std::memory_order_relaxed)) turn();
  current_loop = nullptr;
}

void EventLoop::stop() {
  running_ = false;
  std::uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
}

void EventLoop::drop_pending_work() {
  timers_.clear();
  timer_due_.clear();
  deferred_.clear();
  std::vector<std::function<void()>> inbox;
  {
    std::lock_guard lock(inbox_mu_);
    inbox.swap(inbox_);
  }
  inbox.clear();
  retired_.clear();
}

void EventLoop::post(std::function<void()> fn) {
  bool was_empty;
  {
    std::lock_guard lock(inbox_mu_);
    was_empty = inbox_.empty();
    inbox_.push_back(std::move(fn));
  }
  // The loop looks at the inbox before it sleeps, so only a post into an empty inbox from
  // another thread needs the wake-up syscall.
  if (was_empty && current_loop != this) {
    std::uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
  }
}

void EventLoop::defer(std::function<void()> fn) { deferred_.push_back(std::move(fn)); }

void EventLoop::watch(int fd, std::uint32_t events, IoWatcher* watcher) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = watcher;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0)
    throw std::runtime_error("epoll_ctl(ADD) failed");
}

void EventLoop::modify(int fd, std::uint32_t events, IoWatcher* watcher) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = watcher;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
}

void EventLoop::unwatch(int fd) { epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr); }

void EventLoop::retire(std::shared_ptr<void> object) { retired_.push_back(std::move(object)); }

TimerId EventLoop::after(std::chrono::milliseconds delay, std::function<void()> fn) {
  auto due = Clock::now() + delay;
  TimerId id = next_timer_++;
  timers_.emplace(std::make_pair(due, id), std::move(fn));
  timer_due_.emplace(id, due);
  return id;
}

void EventLoop::cancel(TimerId id) {
  auto it = timer_due_.find(id);
  if (it == timer_due_.end()) return;
  timers_.erase({it->second, id});
  timer_due_.erase(it);
}

void EventLoop::run_due_timers() {
  auto now = Clock::now();
  while (!timers_.empty() && timers_.begin()->first.first <= now) {
    auto node = timers_.extract(timers_.begin());
    timer_due_.erase(node.key().second);
    node.mapped()();
    run_deferred();
  }
}

void EventLoop::drain_inbox() {
  std::vector<std::function<void()>> work;
  {
    std::lock_guard lock(inbox_mu_);
    if (inbox_.empty()) return;
    work.swap(inbox_);
  }
  for (auto& fn : work) {
    fn();
    run_deferred();
  }
}

void EventLoop::run_deferred() {
  // A deferred closure may defer more: run until none is left.
  while (!deferred_.empty()) {
    auto work = std::move(deferred_);
    deferred_.clear();
    for (auto& fn : work) fn();
  }
}

int EventLoop::next_timeout_ms(Clock::time_point now) const {
  int timeout_ms = 1000;
  if (!timers_.empty()) {
    auto t = timers_.begin()->first.first;
    if (t <= now) return 0;
    // Round up, or a deadline 0.4 ms away would spin with a zero timeout until it passes.
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(t - now).count();
    timeout_ms = static_cast<int>(std::min<long long>(ms, timeout_ms));
  }
  return timeout_ms;
}

void EventLoop::turn() {
  drain_inbox();
  run_due_timers();
  int timeout_ms = next_timeout_ms(Clock::now());
  {
    std::lock_guard lock(inbox_mu_);
    if (!inbox_.empty()) timeout_ms = 0;
  }
  retired_.clear();
  if (before_sleep_) before_sleep_();
  busy_since_ns_.store(0, std::memory_order_relaxed);
  epoll_event events[256];
  int n = epoll_wait(epoll_fd_, events, 256, timeout_ms);
  busy_since_ns_.store(now_ns(), std::memory_order_relaxed);
  for (int i = 0; i < n; ++i) {
    static_cast<IoWatcher*>(events[i].data.ptr)->on_io(events[i].events);
    run_deferred();
  }
}

}  // namespace plexus
