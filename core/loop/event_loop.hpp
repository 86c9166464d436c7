#pragma once
// One event loop: an epoll set, one-shot timers and an inbox, run by one thread. The router runs
// one per core (LoopGroup); each owns the client connections it accepted, its own upstream HTTP
// client, its plugins' Lua states and its exchanges, so a request never changes threads.
//
// Other threads reach a loop only through post() (the inbox: one mutex, one eventfd wake-up per
// batch). Everything else here is for the loop's own thread.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "plexus/http_client.hpp"

namespace plexus {

// Something that owns a file descriptor watched by a loop.
class IoWatcher {
 public:
  virtual void on_io(std::uint32_t epoll_events) = 0;

 protected:
  ~IoWatcher() = default;
};

class EventLoop final : public Timers {
 public:
  using Clock = std::chrono::steady_clock;

  explicit EventLoop(std::size_t index = 0);
  ~EventLoop() override;
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  std::size_t index() const { return index_; }

  // Runs on the calling thread until stop(). Work left when it returns is dropped by
  // drop_pending_work() or the destructor.
  void run();
  void stop();  // any thread
  // Destroys timers and posted closures now: call it before unloading code they may point into.
  void drop_pending_work();

  // Any thread: runs fn on this loop, in posting order.
  void post(std::function<void()> fn);
  // Loop thread: runs fn after the current event has been handled (never re-entrantly).
  void defer(std::function<void()> fn);

  // Loop thread. `watcher` must stay alive until unwatch() and the end of the current turn
  // (events already collected for it may still be delivered in this turn: keep it, ignore them).
  void watch(int fd, std::uint32_t events, IoWatcher* watcher);
  void modify(int fd, std::uint32_t events, IoWatcher* watcher);
  void unwatch(int fd);
  // Keeps `object` alive until the end of the current turn (see watch()).
  void retire(std::shared_ptr<void> object);

  // Runs at the end of every turn, before the loop sleeps (flushing buffered logs, say). Set it
  // before run().
  void set_before_sleep(std::function<void()> fn) { before_sleep_ = std::move(fn); }

  // Loop thread: when the loop began handling the current event (an I/O event, a due timer, a
  // batch of posted work, and the work deferred after it). A request's timestamps come from here:
  // one clock read per event instead of one per use (a whole request read the clock 19 times).
  // Outside an event (before run(), say) it is the clock itself.
  Clock::time_point now() const { return handling_ ? now_ : Clock::now(); }
  // Reads the clock again for the rest of the current event, and returns it: where the time spent
  // inside one event is itself the measure (the router's own overhead before an attempt starts).
  // The clock is steady, so nothing measured from either side of it comes out negative.
  Clock::time_point advance_now() {
    if (!handling_) return Clock::now();
    return now_ = Clock::now();
  }

  // Timers (loop thread); due `delay` after now(), or at `due` (at once if it has passed)
  TimerId after(std::chrono::milliseconds delay, std::function<void()> fn) override;
  TimerId at(Clock::time_point due, std::function<void()> fn);
  void cancel(TimerId id) override;

  // Stuck-loop detection, read from other threads: when the current turn began (0: asleep) and
  // what it is running now (a plugin's name while a hook runs; a static string).
  std::int64_t busy_since_ns() const { return busy_since_ns_.load(std::memory_order_relaxed); }
  const char* busy_with() const { return busy_with_.load(std::memory_order_relaxed); }
  void set_busy_with(const char* what) { busy_with_.store(what, std::memory_order_relaxed); }

 private:
  void turn();
  int next_timeout_ms(Clock::time_point now);
  void run_due_timers();
  void drain_inbox();
  void run_deferred();

  std::size_t index_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::shared_ptr<void> wake_watcher_;  // reads wake_fd_
  std::atomic<bool> running_{false};
  std::atomic<bool> sleeping_{false};

  std::mutex inbox_mu_;
  std::vector<std::function<void()>> inbox_;
  std::vector<std::function<void()>> deferred_;
  std::vector<std::function<void()>> deferred_running_;
  std::vector<std::shared_ptr<void>> retired_;

  // Timers: callbacks in reusable slots, deadlines in a binary heap, so arming one allocates
  // nothing (every request arms and cancels two). A cancelled timer's heap entry stays until it
  // surfaces or a compaction drops it; its slot's generation tells it apart from a later timer.
  // A TimerId is (generation << 32) | (slot + 1): never 0.
  struct TimerSlot {
    std::function<void()> fn;
    std::uint32_t generation = 1;
    bool armed = false;
  };
  struct TimerEntry {
    Clock::time_point due;
    std::uint64_t seq;  // equal deadlines fire in the order they were set
    std::uint32_t slot;
    std::uint32_t generation;
  };
  bool timer_live(const TimerEntry& e) const;
  std::function<void()> release_timer(std::uint32_t slot);  // returns its callback
  std::vector<TimerSlot> timer_slots_;
  std::vector<std::uint32_t> free_timer_slots_;
  std::vector<TimerEntry> timer_heap_;
  std::uint64_t timer_seq_ = 0;
  std::size_t armed_timers_ = 0;

  std::function<void()> before_sleep_;
  std::atomic<std::int64_t> busy_since_ns_{0};
  Clock::time_point now_{};
  bool handling_ = false;  // now_ is the current event's start
  std::atomic<const char*> busy_with_{nullptr};
};

}  // namespace plexus
