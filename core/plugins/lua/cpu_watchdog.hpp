#pragma once
// Stops work that overruns its CPU time without costing the work anything while it runs.
//
// The thread doing the work arms a CpuBudgetScope: a few stores to memory of its own, no syscall,
// no lock. One watchdog thread for the process looks at every armed thread now and then (a tick:
// a quarter of the smallest limit armed so far, 1 ms at least) and reads that thread's CPU clock.
// Once the work has used more than its limit since the watchdog first saw it armed, the watchdog
// signals that thread, and again at every tick while the work goes on; the signal handler, on
// that thread, calls `expired(context)`. So work is told to stop after between `limit` and
// `limit` plus two ticks of CPU time (plus however late the watchdog's thread is scheduled);
// time the thread spends preempted or asleep does not count. The signal again at every tick is
// part of the design, not a retry for luck: a signal can land where `expired` cannot reach the
// work (Lua: a coroutine about to be resumed), and the next one finds it.
//
// The watchdog wakes at every tick (400 times a second at a 10 ms limit, a few microseconds each)
// until no scope has been armed for a second; then it sleeps until one is. The arm that finds it
// asleep wakes it (one futex call), so only the first call after an idle second pays for that.
//
// `expired` runs in a signal handler, between two instructions of the work: it must be idempotent
// and may only do what is async-signal-safe (set an atomic flag; lua_sethook, which Lua documents
// as safe there).
#include <chrono>
#include <cstdint>

namespace plexus::lua {

class CpuBudgetScope {
 public:
  using Expired = void (*)(void* context);

  // Arms the calling thread. One scope per thread at a time: opening one while another is armed
  // throws std::logic_error. The router never nests them (Vm::HostWork closes its scope and opens
  // a new one; other plugins' hooks run from the loop, never from inside a hook call), and a
  // nested scope would have to hand the outer one back whole, budget and all, on closing.
  CpuBudgetScope(std::chrono::microseconds limit, Expired expired, void* context);
  ~CpuBudgetScope();
  CpuBudgetScope(const CpuBudgetScope&) = delete;
  CpuBudgetScope& operator=(const CpuBudgetScope&) = delete;
};

// True while the watchdog sleeps for want of armed scopes, past its last look at them: the next
// scope armed can only be watched by waking it (for tests).
bool cpu_watchdog_asleep();

}  // namespace plexus::lua
