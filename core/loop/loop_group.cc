#include "loop/loop_group.hpp"

#include <pthread.h>

#include <string>

namespace plexus {

LoopGroup::LoopGroup(std::size_t count) {
  if (count == 0) count = 1;
  for (std::size_t i = 0; i < count; ++i) loops_.push_back(std::make_unique<EventLoop>(i));
}

LoopGroup::~LoopGroup() { stop(); }

void LoopGroup::start() {
  if (!threads_.empty()) return;
  for (auto& loop : loops_) {
    threads_.emplace_back([l = loop.get()] {
      std::string name = "plexus-loop-" + std::to_string(l->index());
      pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
      l->run();
    });
  }
}

void LoopGroup::stop() {
  for (auto& loop : loops_) loop->stop();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

LoopGroup::Stall LoopGroup::longest_turn() const {
  Stall worst;
  auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                 EventLoop::Clock::now().time_since_epoch())
                 .count();
  for (const auto& loop : loops_) {
    auto since = loop->busy_since_ns();
    if (since == 0) continue;
    double seconds = static_cast<double>(now - since) / 1e9;
    if (seconds > worst.seconds) worst = {loop->index(), seconds, loop->busy_with()};
  }
  return worst;
}

}  // namespace plexus
