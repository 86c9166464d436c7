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
  {
    auto slots = std::move(timer_slots_);  // callbacks are destroyed once the loop's state is clear
    timer_slots_.clear();
    free_timer_slots_.clear();
    timer_heap_.clear();
    armed_timers_ = 0;
  }
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

namespace {
// std::push_heap and friends keep the largest first: "later" puts the earliest deadline on top.
struct Later {
  template <class Entry>
  bool operator()(const Entry& a, const Entry& b) const {
    return a.due != b.due ? a.due > b.due : a.seq > b.seq;
  }
};
}  // namespace

TimerId EventLoop::after(std::chrono::milliseconds delay, std::function<void()> fn) {
  return at(now() + delay, std::move(fn));
}

TimerId EventLoop::at(Clock::time_point due, std::function<void()> fn) {
  std::uint32_t slot;
  if (!free_timer_slots_.empty()) {
    slot = free_timer_slots_.back();
    free_timer_slots_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(timer_slots_.size());
    timer_slots_.emplace_back();
  }
  TimerSlot& s = timer_slots_[slot];
  s.fn = std::move(fn);
  s.armed = true;
  ++armed_timers_;
  timer_heap_.push_back({due, timer_seq_++, slot, s.generation});
  std::push_heap(timer_heap_.begin(), timer_heap_.end(), Later{});
  return (static_cast<TimerId>(s.generation) << 32) | (slot + 1);
}

bool EventLoop::timer_live(const TimerEntry& e) const {
  return e.slot < timer_slots_.size() && timer_slots_[e.slot].armed && timer_slots_[e.slot].generation == e.generation;
}

// Frees an armed slot for reuse and hands back its callback: the caller runs or destroys it once
// the timers are consistent again (a callback's captures may arm or cancel timers as they go).
std::function<void()> EventLoop::release_timer(std::uint32_t slot) {
  TimerSlot& s = timer_slots_[slot];
  std::function<void()> fn = std::move(s.fn);
  s.fn = nullptr;
  s.armed = false;
  ++s.generation;
  --armed_timers_;
  free_timer_slots_.push_back(slot);
  return fn;
}

void EventLoop::cancel(TimerId id) {
  std::uint32_t slot = static_cast<std::uint32_t>(id & 0xffffffffu) - 1;  // id 0 wraps: out of range
  std::uint32_t generation = static_cast<std::uint32_t>(id >> 32);
  if (!timer_live({{}, 0, slot, generation})) return;
  { auto dropped = release_timer(slot); }
  // Cancelled entries wait in the heap; when they outnumber the armed ones, sweep them out.
  if (timer_heap_.size() > 64 && timer_heap_.size() > 4 * armed_timers_) {
    std::erase_if(timer_heap_, [this](const TimerEntry& e) { return !timer_live(e); });
    std::make_heap(timer_heap_.begin(), timer_heap_.end(), Later{});
  }
}

void EventLoop::run_due_timers() {
  auto now = now_;
  while (!timer_heap_.empty() && timer_heap_.front().due <= now) {
    std::pop_heap(timer_heap_.begin(), timer_heap_.end(), Later{});
    TimerEntry e = timer_heap_.back();
    timer_heap_.pop_back();
    if (!timer_live(e)) continue;  // cancelled
    auto fn = release_timer(e.slot);
    fn();
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
  now_ = Clock::now();
  for (auto& fn : work) {
    fn();
    run_deferred();
  }
}

void EventLoop::run_deferred() {
  // A deferred closure may defer more: run until none is left.
  while (!deferred_.empty()) {
    // Swapped with a kept vector, not moved out: both keep their capacity, so deferring
    // allocates nothing once the loop has warmed up.
    deferred_running_.swap(deferred_);
    for (auto& fn : deferred_running_) fn();
    deferred_running_.clear();
  }
}

int EventLoop::next_timeout_ms(Clock::time_point now) {
  while (!timer_heap_.empty() && !timer_live(timer_heap_.front())) {  // cancelled: not worth a wake-up
    std::pop_heap(timer_heap_.begin(), timer_heap_.end(), Later{});
    timer_heap_.pop_back();
  }
  int timeout_ms = 1000;
  if (!timer_heap_.empty()) {
    auto t = timer_heap_.front().due;
    if (t <= now) return 0;
    // Round up, or a deadline 0.4 ms away would spin with a zero timeout until it passes.
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(t - now).count();
    timeout_ms = static_cast<int>(std::min<long long>(ms, timeout_ms));
  }
  return timeout_ms;
}

void EventLoop::turn() {
  handling_ = true;
  drain_inbox();
  now_ = Clock::now();
  run_due_timers();
  int timeout_ms = next_timeout_ms(Clock::now());
  {
    std::lock_guard lock(inbox_mu_);
    if (!inbox_.empty()) timeout_ms = 0;
  }
  retired_.clear();
  if (before_sleep_) before_sleep_();
  handling_ = false;
  busy_since_ns_.store(0, std::memory_order_relaxed);
  epoll_event events[256];
  int n = epoll_wait(epoll_fd_, events, 256, timeout_ms);
  handling_ = true;
  now_ = Clock::now();
  busy_since_ns_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(now_.time_since_epoch()).count(),
                       std::memory_order_relaxed);
  for (int i = 0; i < n; ++i) {
    if (i > 0) now_ = Clock::now();
    static_cast<IoWatcher*>(events[i].data.ptr)->on_io(events[i].events);
    run_deferred();
  }
}

}  // namespace plexus
