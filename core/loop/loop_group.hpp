#pragma once
// The router's event loops, one thread each (config "threads", default: one per core).
#include <cstddef>
#include <memory>
#include <thread>
#include <vector>

#include "loop/event_loop.hpp"

namespace plexus {

class LoopGroup {
 public:
  explicit LoopGroup(std::size_t count);
  ~LoopGroup();  // stops and joins

  std::size_t size() const { return loops_.size(); }
  EventLoop& at(std::size_t i) { return *loops_[i]; }

  void start();  // one thread per loop
  void stop();   // stops every loop and joins its thread; pending work stays until dropped

  // The longest time any loop has spent in its current turn, and which loop: for /readyz and
  // the stuck-loop warning. {0, 0} when every loop is asleep or quick.
  struct Stall {
    std::size_t loop = 0;
    double seconds = 0;
    const char* busy_with = nullptr;
  };
  Stall longest_turn() const;

 private:
  std::vector<std::unique_ptr<EventLoop>> loops_;
  std::vector<std::thread> threads_;
};

}  // namespace plexus
