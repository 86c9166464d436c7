#pragma once
// The host's worker pool, for CPU-heavy plugin work (parsing a PDF, say) that must never run on
// an event loop. A few threads shared by the whole router, with a bounded queue; results come
// back on the loop that submitted the work.
#include <functional>

namespace plexus {

class Workers {
 public:
  virtual ~Workers() = default;
  // Runs `work` on a worker thread, then `done` on the submitting loop, in that order, each once.
  // Returns false, running neither, when the queue is full: the caller refuses the request (503)
  // rather than queueing without bound. `work` must not touch loop-owned state; `done` may.
  virtual bool submit(std::function<void()> work, std::function<void()> done) = 0;
};

}  // namespace plexus
