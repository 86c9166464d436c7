#include "plugins/lua/cpu_watchdog.hpp"

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace plexus::lua {
namespace {

using Expired = CpuBudgetScope::Expired;

constexpr std::int64_t kMinTickNs = 1'000'000;
constexpr std::int64_t kMaxTickNs = 100'000'000;
// With no call armed for this long, the watchdog sleeps until the next one is: an idle router
// does not wake 400 times a second for nothing, and a busy one never pays for the wake-up.
constexpr std::chrono::seconds kIdleAfter{1};

// A real-time signal: queued, and it carries the call it was sent for. glibc keeps the first few
// for itself and SIGRTMIN already skips them.
int budget_signal() { return SIGRTMIN + 4; }

// One per thread that has armed a budget. The owner thread writes the call fields (and its signal
// handler reads them); the watchdog reads `thread`, `cpu_clock`, `armed_call` and `limit_ns`, and
// keeps the `seen` fields to itself.
struct Slot {
  pthread_t thread{};
  clockid_t cpu_clock{};
  std::atomic<std::uint64_t> armed_call{0};  // 0: nothing armed
  std::atomic<std::int64_t> limit_ns{0};
  std::atomic<Expired> expired{nullptr};
  std::atomic<void*> context{nullptr};
  std::atomic<std::uint64_t> calls{0};  // written by the owner only; the watchdog reads it for activity

  std::uint64_t seen_call = 0;
  std::int64_t seen_cpu_ns = 0;
  std::uint64_t seen_calls = 0;
};

// A thread's CPU time. Should its clock ever fail, wall time stands in: it only runs faster, so
// the work is still stopped.
std::int64_t cpu_ns(clockid_t clock) {
  timespec ts{};
  if (clock_gettime(clock, &ts) != 0) clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Read by the signal handler: a plain pointer, so no lazy initialisation runs in there.
constinit thread_local Slot* this_thread_slot = nullptr;

void on_budget_signal(int, siginfo_t* info, void*) {
  int saved_errno = errno;
  Slot* slot = this_thread_slot;
  // A signal that arrives after its call ended (or once another began) finds another call id.
  if (slot && slot->armed_call.load(std::memory_order_relaxed) == reinterpret_cast<std::uintptr_t>(info->si_value.sival_ptr)) {
    Expired expired = slot->expired.load(std::memory_order_relaxed);
    if (expired) expired(slot->context.load(std::memory_order_relaxed));
  }
  errno = saved_errno;
}

class Watchdog {
 public:
  void add(Slot* slot) {
    std::lock_guard lock(mutex_);
    if (!started_) start();
    slots_.push_back(slot);
  }
  void remove(Slot* slot) {
    std::lock_guard lock(mutex_);
    slots_.erase(std::remove(slots_.begin(), slots_.end(), slot), slots_.end());
  }
  // Called after a call is armed (a seq_cst store). The watchdog sets `asleep_` before its last
  // look at the slots (seq_cst too), so either it sees the call or the call sees it asleep.
  void wake_if_asleep() {
    if (!asleep_.load(std::memory_order_seq_cst)) return;
    wake_word_.fetch_add(1, std::memory_order_release);
    wake_word_.notify_one();
  }
  // Past its last look at the slots: the next arm can only reach it by waking it.
  bool waiting() const { return waiting_.load(std::memory_order_relaxed); }

  // The tick follows the smallest limit ever armed: racy, but it only ever decreases.
  void note_limit(std::int64_t limit_ns) {
    std::int64_t tick = std::clamp(limit_ns / 4, kMinTickNs, kMaxTickNs);
    if (tick < tick_ns_.load(std::memory_order_relaxed)) tick_ns_.store(tick, std::memory_order_relaxed);
  }

 private:
  void start() {
    struct sigaction action {};
    action.sa_sigaction = on_budget_signal;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    if (sigaction(budget_signal(), &action, nullptr) != 0) throw std::runtime_error("cannot install the CPU budget's signal handler");
    std::thread([this] { run(); }).detach();  // runs until the process exits, like the watchdog itself
    started_ = true;
  }

  [[noreturn]] void run() {
    sigset_t all;  // the process's signals are for other threads
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    auto last_active = std::chrono::steady_clock::now();
    for (;;) {
      std::this_thread::sleep_for(std::chrono::nanoseconds(tick_ns_.load(std::memory_order_relaxed)));
      auto now = std::chrono::steady_clock::now();
      if (check_all()) last_active = now;
      if (now - last_active < kIdleAfter) continue;
      std::uint32_t word = wake_word_.load(std::memory_order_acquire);
      asleep_.store(true, std::memory_order_seq_cst);
      if (!check_all()) {
        waiting_.store(true, std::memory_order_relaxed);
        wake_word_.wait(word, std::memory_order_acquire);  // until a call is armed
        waiting_.store(false, std::memory_order_relaxed);
      }
      asleep_.store(false, std::memory_order_relaxed);
      last_active = std::chrono::steady_clock::now();
    }
  }

  // Whether any thread armed a call since the last look.
  bool check_all() {
    std::lock_guard lock(mutex_);  // a slot is removed under it before its thread ends
    bool active = false;
    for (Slot* slot : slots_) active = check(*slot) || active;
    return active;
  }

  static bool check(Slot& slot) {
    std::uint64_t call = slot.armed_call.load(std::memory_order_seq_cst);
    std::uint64_t calls = slot.calls.load(std::memory_order_relaxed);
    bool active = call != 0 || calls != slot.seen_calls;
    slot.seen_calls = calls;
    if (call == 0) return active;
    std::int64_t used = cpu_ns(slot.cpu_clock);
    if (call != slot.seen_call) {  // first seen: its CPU time counts from here
      slot.seen_call = call;
      slot.seen_cpu_ns = used;
      return true;
    }
    if (used - slot.seen_cpu_ns < slot.limit_ns.load(std::memory_order_relaxed)) return true;
    // Again at every tick while the call goes on: `expired` must be idempotent, and a signal
    // that found the work between two places (a coroutine just switched) is not the last word.
    sigval value{};
    value.sival_ptr = reinterpret_cast<void*>(static_cast<std::uintptr_t>(call));
    pthread_sigqueue(slot.thread, budget_signal(), value);
    return true;
  }

  std::mutex mutex_;
  std::vector<Slot*> slots_;
  bool started_ = false;
  std::atomic<std::int64_t> tick_ns_{kMaxTickNs};
  std::atomic<bool> asleep_{false};
  std::atomic<bool> waiting_{false};  // for tests: asleep_ is set before the last look, this after
  std::atomic<std::uint32_t> wake_word_{0};
};

// Never destroyed: its thread runs until the process exits.
Watchdog& watchdog() {
  static auto* w = new Watchdog;
  return *w;
}

// The calling thread's slot, added to the watchdog on first use and removed when the thread ends.
Slot& slot_of_this_thread() {
  struct Owner {
    Slot slot;
    Owner() {
      slot.thread = pthread_self();
      if (pthread_getcpuclockid(slot.thread, &slot.cpu_clock) != 0) throw std::runtime_error("no CPU clock for this thread");
      sigset_t budget;  // a thread that inherited a mask blocking it could never be stopped
      sigemptyset(&budget);
      sigaddset(&budget, budget_signal());
      pthread_sigmask(SIG_UNBLOCK, &budget, nullptr);
      watchdog().add(&slot);
      this_thread_slot = &slot;
    }
    ~Owner() {
      watchdog().remove(&slot);
      this_thread_slot = nullptr;
    }
  };
  thread_local Owner owner;
  return owner.slot;
}

// Only over a disarmed slot: a signal still queued for the previous call finds another call id
// (or none) and runs nothing, whatever of `expired` and `context` it sees being stored.
void arm(Slot& slot, std::int64_t limit_ns, Expired expired, void* context) {
  slot.limit_ns.store(limit_ns, std::memory_order_relaxed);
  slot.expired.store(expired, std::memory_order_relaxed);
  slot.context.store(context, std::memory_order_relaxed);
  std::uint64_t call = slot.calls.load(std::memory_order_relaxed) + 1;
  slot.calls.store(call, std::memory_order_relaxed);
  slot.armed_call.store(call, std::memory_order_seq_cst);  // last: the call is whole
  watchdog().wake_if_asleep();
}

}  // namespace

bool cpu_watchdog_asleep() { return watchdog().waiting(); }

CpuBudgetScope::CpuBudgetScope(std::chrono::microseconds limit, Expired expired, void* context) {
  auto limit_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(limit).count();
  watchdog().note_limit(limit_ns);
  Slot& slot = slot_of_this_thread();
  if (slot.armed_call.load(std::memory_order_relaxed) != 0)
    throw std::logic_error("a CPU budget scope is already armed on this thread");
  arm(slot, limit_ns, expired, context);
}

CpuBudgetScope::~CpuBudgetScope() { this_thread_slot->armed_call.store(0, std::memory_order_release); }

}  // namespace plexus::lua
