#pragma once
// For tests: an event loop running on a thread of its own, and a way to run code on it and wait
// for the result (loop objects are used from their loop's thread only).
#include <future>
#include <thread>
#include <utility>

#include "loop/event_loop.hpp"

namespace plexus {

class LoopThread {
 public:
  LoopThread() : thread_([this] { loop_.run(); }) {}
  ~LoopThread() { stop(); }
  LoopThread(const LoopThread&) = delete;
  LoopThread& operator=(const LoopThread&) = delete;

  EventLoop& loop() { return loop_; }

  // Runs `fn` on the loop, waits for it, and returns what it returned.
  template <class Fn>
  auto run(Fn fn) {
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto result = task.get_future();
    loop_.post([&] { task(); });
    return result.get();
  }

  void stop() {
    if (!thread_.joinable()) return;
    loop_.stop();
    thread_.join();
  }

 private:
  EventLoop loop_;
  std::thread thread_;
};

}  // namespace plexus
