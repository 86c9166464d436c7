#include "router_link.hpp"

namespace plexus::node {

void RouterLink::open(pb::NodeLink::Stub& stub, const std::string& token, pb::NodeMessage hello) {
  self_ = shared_from_this();
  context_.AddMetadata("authorization", "Bearer " + token);
  stub.async()->Connect(&context_, this);
  // Writes may start from other threads at any time until close: the hold keeps OnDone from
  // running under them; it is removed once the stream is closing.
  AddHold();
  {
    std::lock_guard lock(mu_);
    queued_bytes_ += hello.ByteSizeLong();  // OnWriteDone takes it off again, like any message
    outbox_.push_back(std::move(hello));
    writing_ = true;
  }
  StartWrite(&outbox_.front());
  StartRead(&in_);
  StartCall();
}

bool RouterLink::send(pb::NodeMessage message) {
  std::unique_lock lock(mu_);
  if (closing_) return false;
  queued_bytes_ += message.ByteSizeLong();
  outbox_.push_back(std::move(message));  // references to queued elements stay valid
  if (!writing_) start_next_write_locked(lock);
  return true;
}

void RouterLink::start_next_write_locked(std::unique_lock<std::mutex>& lock) {
  writing_ = true;
  const pb::NodeMessage* next = &outbox_.front();
  lock.unlock();
  StartWrite(next);
}

void RouterLink::notify_when_drained(std::size_t low_mark) {
  {
    std::lock_guard lock(mu_);
    if (queued_bytes_ > low_mark) {
      drained_mark_ = low_mark;
      return;
    }
  }
  if (on_drained_) on_drained_();
}

void RouterLink::OnWriteDone(bool ok) {
  std::unique_lock lock(mu_);
  queued_bytes_ -= outbox_.front().ByteSizeLong();
  outbox_.pop_front();
  writing_ = false;
  if (drained_mark_ && (queued_bytes_ <= drained_mark_ || !ok)) {
    drained_mark_ = 0;
    if (on_drained_) on_drained_();  // only posts to the agent's loop: safe under the lock
  }
  if (!ok) {  // the stream is broken: OnReadDone(false) and OnDone follow
    outbox_.clear();
    queued_bytes_ = 0;
    closing_ = true;
    return wind_up_locked(lock);
  }
  if (!outbox_.empty() && !read_side_over_) return start_next_write_locked(lock);  // queued words go out, closing or not
  wind_up_locked(lock);
}

void RouterLink::wind_up_locked(std::unique_lock<std::mutex>& lock) {
  if (!closing_ || writing_ || !holding_) return;
  holding_ = false;
  bool say_done = !writes_done_ && !read_side_over_;
  writes_done_ = true;
  lock.unlock();
  if (say_done) StartWritesDone();
  RemoveHold();
}

void RouterLink::close_writes() {
  std::unique_lock lock(mu_);
  closing_ = true;
  wind_up_locked(lock);  // or OnWriteDone does, once the write in flight is done
}

void RouterLink::OnReadDone(bool ok) {
  if (!ok) {
    std::unique_lock lock(mu_);
    read_side_over_ = true;
    closing_ = true;
    wind_up_locked(lock);
    return;
  }
  on_message_(std::move(in_));
  in_.Clear();
  StartRead(&in_);
}

void RouterLink::OnDone(const grpc::Status& status) {
  on_closed_(status);
  self_.reset();  // may destroy this: the last statement
}

}  // namespace plexus::node
