#pragma once
// The router's worker pool: a few threads for CPU-heavy plugin work (PDF extraction) that must
// never run on an event loop. Work goes in from any loop through a bounded queue; each job's
// `done` goes back to the loop that submitted it through that loop's inbox. The threads run at a
// lower scheduling priority (nice +10), so on a busy machine the event loops, which every
// request waits on, come first.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "plexus/workers.hpp"

namespace plexus {

class EventLoop;

class WorkerPool {
 public:
  WorkerPool(std::size_t threads, std::size_t queue_limit);
  ~WorkerPool();  // stop()
  // Finishes the job in hand on each thread, drops the queue, joins the threads; later submits
  // are refused. Call it before unloading the code jobs point into (plugins).
  void stop();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  bool submit(EventLoop& origin, std::function<void()> work, std::function<void()> done);
  std::size_t threads() const { return threads_.size(); }
  std::size_t queued() const;

 private:
  struct Job {
    EventLoop* origin;
    std::function<void()> work;
    std::function<void()> done;
  };
  void run();

  std::size_t queue_limit_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// One loop's view of the pool: what plugins on that loop get as their Workers.
class LoopWorkers final : public Workers {
 public:
  LoopWorkers(WorkerPool& pool, EventLoop& loop) : pool_(pool), loop_(loop) {}
  bool submit(std::function<void()> work, std::function<void()> done) override {
    return pool_.submit(loop_, std::move(work), std::move(done));
  }

 private:
  WorkerPool& pool_;
  EventLoop& loop_;
};

}  // namespace plexus
