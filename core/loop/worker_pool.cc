#include "loop/worker_pool.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "loop/event_loop.hpp"

namespace plexus {

WorkerPool::WorkerPool(std::size_t threads, std::size_t queue_limit) : queue_limit_(queue_limit) {
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

WorkerPool::~WorkerPool() { stop(); }

void WorkerPool::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    queue_.clear();
  }
  wake_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

bool WorkerPool::submit(EventLoop& origin, std::function<void()> work, std::function<void()> done) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || queue_.size() >= queue_limit_) return false;
    queue_.push_back(Job{&origin, std::move(work), std::move(done)});
  }
  wake_.notify_one();
  return true;
}

std::size_t WorkerPool::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void WorkerPool::run() {
  // Linux applies nice per thread: this one yields to the event loops when cores are scarce.
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 10) != 0)
    spdlog::debug("worker pool: could not lower a worker thread's priority");
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      job.work();
    } catch (const std::exception& e) {
      // `done` still runs: it is how the submitter learns the job is over.
      spdlog::warn("worker pool: a job threw: {}", e.what());
    } catch (...) {
      spdlog::warn("worker pool: a job threw");
    }
    job.origin->post(std::move(job.done));
  }
}

}  // namespace plexus
