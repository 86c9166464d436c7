#pragma once
// The node's side of one NodeLink.Connect stream (gRPC's callback API): one read always
// outstanding, one write in flight with a queue behind it. A broken stream is not reopened
// here: the agent makes a new RouterLink (and registers again) after a backoff.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

#include "plexus/node/v1/node.grpc.pb.h"

namespace plexus::node {

namespace pb = ::plexus::node::v1;

class RouterLink final : public grpc::ClientBidiReactor<pb::NodeMessage, pb::RouterMessage>,
                         public std::enable_shared_from_this<RouterLink> {
 public:
  // Both run on gRPC's threads and must not block: hand work to the agent's loop.
  using OnMessage = std::function<void(pb::RouterMessage message)>;
  using OnClosed = std::function<void(const grpc::Status& status)>;

  RouterLink(OnMessage on_message, OnClosed on_closed) : on_message_(std::move(on_message)), on_closed_(std::move(on_closed)) {}

  // Opens the stream with the node token and sends `hello` (the Register) first.
  void open(pb::NodeLink::Stub& stub, const std::string& token, pb::NodeMessage hello);
  // Any thread; false once the stream is closing.
  bool send(pb::NodeMessage message);
  // Bytes queued for the router and not yet written: what a backend faster than the stream
  // leaves behind. The agent pauses its orders above a mark and resumes them once `on_drained`
  // (set before open; gRPC's thread) says the queue fell below `low_mark` after a call to
  // notify_when_drained(). `on_drained` runs under the link's lock: it must only post.
  std::size_t queued_bytes() const { return queued_bytes_.load(std::memory_order_relaxed); }
  void notify_when_drained(std::size_t low_mark);
  void set_on_drained(std::function<void()> fn) { on_drained_ = std::move(fn); }
  // Any thread: no more writes; the router ends the stream once it has read everything.
  void close_writes();
  // Any thread: abandon the stream now.
  void cancel() { context_.TryCancel(); }

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnWritesDoneDone(bool ok) override {}
  void OnDone(const grpc::Status& status) override;

 private:
  void start_next_write_locked(std::unique_lock<std::mutex>& lock);
  // Once closing and no write is in flight: WritesDone (if the stream still stands), then the
  // hold goes. Unlocks.
  void wind_up_locked(std::unique_lock<std::mutex>& lock);

  grpc::ClientContext context_;
  OnMessage on_message_;
  OnClosed on_closed_;
  std::shared_ptr<RouterLink> self_;  // until OnDone
  pb::RouterMessage in_;
  std::mutex mu_;
  std::deque<pb::NodeMessage> outbox_;  // front: the write in flight
  std::atomic<std::size_t> queued_bytes_{0};
  std::size_t drained_mark_ = 0;  // 0: nobody waits
  std::function<void()> on_drained_;
  bool writing_ = false;
  bool closing_ = false;   // no more writes are started
  bool writes_done_ = false;
  bool read_side_over_ = false;  // the router ended the stream (or it broke)
  bool holding_ = true;          // AddHold not yet matched by RemoveHold
};

}  // namespace plexus::node
