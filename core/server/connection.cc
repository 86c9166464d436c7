#include "server/connection.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>

namespace plexus {
namespace {

constexpr std::size_t kReadSize = 64u << 10;
constexpr auto kLingerTime = std::chrono::seconds(2);

const char* reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

}  // namespace

// ---- Responder ----------------------------------------------------------------------------

std::string Responder::head(int status, const Headers& headers) const {
  std::string h;
  h.reserve(256);
  h.append("HTTP/1.1 ");
  char num[8];
  auto [end, ec] = std::to_chars(num, num + sizeof num, status);
  h.append(num, end);
  h.push_back(' ');
  h.append(reason_phrase(status));
  h.append("\r\n");
  for (const auto& [name, value] : headers) {
    h.append(name);
    h.append(": ");
    h.append(value);
    h.append("\r\n");
  }
  if (close_after_)
    h.append("Connection: close\r\n");
  else if (http10_keep_alive_)
    h.append("Connection: keep-alive\r\n");
  return h;
}

void Responder::send_whole(int status, const Headers& headers, std::string_view body) {
  if (finished_) return;
  std::string bytes = head(status, headers);
  bytes.append("Content-Length: ");
  bytes.append(std::to_string(body.size()));
  bytes.append("\r\n\r\n");
  bytes.append(body);
  write(bytes);
  finish();
}

void Responder::begin_chunked(int status, const Headers& headers) {
  if (finished_) return;
  std::string bytes = head(status, headers);
  bytes.append("Transfer-Encoding: chunked\r\n\r\n");
  write(bytes);
}

void Responder::send_framed(std::string_view framed_chunks) {
  if (!finished_) write(framed_chunks);
}

void Responder::end_chunked() {
  if (finished_) return;
  write("0\r\n\r\n");
  finish();
}

void Responder::write(std::string_view bytes) {
  if (!conn_) return;  // the client is gone: the bytes have nowhere to go
  if (at_head_)
    conn_->write(bytes);
  else
    pending_.append(bytes);
}

void Responder::finish() {
  finished_ = true;
  gone_ = nullptr;
  if (conn_) conn_->response_finished();
}

void Responder::abandon() {
  if (finished_ || !conn_) return;
  gone_ = nullptr;
  conn_->close();
}

std::size_t Responder::queued_bytes() const {
  if (!conn_) return 0;
  return at_head_ ? conn_->out_.size() - conn_->out_off_ : pending_.size();
}

void Responder::when_drained(std::function<void()> fn) {
  if (!conn_ || queued_bytes() <= kLowMark) {
    if (conn_) conn_->loop_.defer(std::move(fn));
    return;
  }
  drained_ = std::move(fn);
}

// ---- Connection ---------------------------------------------------------------------------

Connection::Connection(EventLoop& loop, int fd, std::unique_ptr<ByteStream> stream,
                       const ConnectionLimits& limits, ConnectionHandler& handler)
    : loop_(loop), fd_(fd), stream_(std::move(stream)), limits_(limits), handler_(handler),
      parser_(limits.max_header_bytes, limits.max_body_bytes) {}

Connection::~Connection() {
  if (!closed_) {
    if (timer_) loop_.cancel(timer_);
    stream_.reset();
    ::close(fd_);
  }
}

void Connection::start() {
  last_activity_ = loop_.now();
  // Edge-triggered, both directions, registered once: no epoll_ctl per request or response.
  loop_.watch(fd_, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, this);
  arm_timer(limits_.keepalive_timeout);
  read_input();  // bytes may have arrived with the connection
}

void Connection::on_io(std::uint32_t events) {
  if (closed_) return;  // collected before this connection closed, in the same turn
  if (events & EPOLLERR) return close();
  // TLS may need to read to write and to write to read: on any event, try both.
  if (!out_.empty()) flush();
  if (closed_) return;
  peer_closed_ = peer_closed_ || (events & (EPOLLRDHUP | EPOLLHUP));
  // A plain socket's write-ready edge says nothing about input (every new connection's first
  // event is one, and so is each drained answer): a read would only get EAGAIN.
  if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) && stream_->short_read_drains()) return;
  read_input();
}

void Connection::read_input() {
  char buf[kReadSize];
  batching_ = true;
  while (!closed_) {
    if (!lingering_ && queue_.size() >= limits_.max_pipelined) {
      read_blocked_ = true;  // resumed when a response finishes
      break;
    }
    read_blocked_ = false;
    std::size_t n = 0;
    IoStatus st = stream_->read(buf, sizeof buf, n);
    if (st == IoStatus::kWouldBlock) break;
    if (st != IoStatus::kOk) {
      // End of input is the client leaving (as nginx reads it): unfinished responses are
      // cancelled. A half-close while requests are still pending is not supported.
      batching_ = false;
      return close();
    }
    last_activity_ = loop_.now();
    if (!lingering_ && !stop_parsing_) {  // else never read as requests
      in_.append(buf, n);
      parse_input();
    }
    // Edge-triggered: a short read drained the socket, and bytes that come later raise a new
    // edge, so the read that would only say EAGAIN is skipped (not for TLS, which may hold
    // decrypted bytes, nor once the peer has closed: its end must still be read).
    if (n < sizeof buf && stream_->short_read_drains() && !peer_closed_) break;
  }
  batching_ = false;
  if (!closed_) flush();
}

void Connection::parse_input() {
  while (!stop_parsing_ && queue_.size() < limits_.max_pipelined && in_off_ < in_.size()) {
    if (request_started_ == EventLoop::Clock::time_point{}) request_started_ = loop_.now();
    std::size_t used = 0;
    auto status = parser_.parse(std::string_view(in_).substr(in_off_), used);
    in_off_ += used;
    if (status == RequestParser::Status::kNeedMore) {
      // The client waits for this before sending a large body; only the head response may
      // say it, or it would arrive in the middle of an earlier response.
      if (!continue_sent_ && queue_.empty() && parser_.wants_continue()) {
        continue_sent_ = true;
        write("HTTP/1.1 100 Continue\r\n\r\n");
      }
      break;
    }
    request_started_ = {};
    continue_sent_ = false;
    auto responder = next_responder();
    if (status == RequestParser::Status::kError) {
      stop_parsing_ = true;
      responder->close_connection_after();
      handler_.on_framing_error(parser_.error(), responder);
      break;
    }
    IncomingRequest request = parser_.take();
    if (!request.keep_alive) {
      stop_parsing_ = true;
      responder->close_connection_after();
    } else if (request.version_minor == 0) {
      responder->http10_keep_alive_ = true;
    }
    handler_.on_request(std::move(request), responder);
    if (closed_) return;
  }
  if (in_off_ == in_.size()) {
    in_.clear();
    in_off_ = 0;
  } else if (in_off_ > (64u << 10)) {
    in_.erase(0, in_off_);
    in_off_ = 0;
  }
  if (in_off_ < in_.size() && request_started_ == EventLoop::Clock::time_point{})
    request_started_ = loop_.now();
}

std::shared_ptr<Responder> Connection::next_responder() {
  auto r = std::make_shared<Responder>();
  r->conn_ = this;
  r->at_head_ = queue_.empty();
  queue_.push_back(r);
  return r;
}

void Connection::write(std::string_view bytes) {
  if (closed_) return;
  bool backlog = out_off_ < out_.size();
  if (!backlog) {
    out_.clear();
    out_off_ = 0;
  }
  out_.append(bytes);
  // A backlog waits for the socket's write-ready edge: a slow reader gets the rest when it has
  // room, not a partial send per upstream event (which also kept the sent part of out_ from
  // ever being dropped).
  if (batching_ || flush_deferred_ || backlog) return;
  // Outside read_input (an upstream's bytes, a timer, the inbox): what the event being handled
  // writes goes out in one send once it is done. A stream's head and its first event, or the
  // events of one upstream read, were a send each, and each send on loopback delivers to the
  // reader on the spot.
  flush_deferred_ = true;
  loop_.defer([this] {  // the connection outlives this turn (EventLoop::retire)
    flush_deferred_ = false;
    if (!closed_) flush();
  });
}

void Connection::flush() {
  while (out_off_ < out_.size()) {
    std::size_t n = 0;
    IoStatus st = stream_->write(out_.data() + out_off_, out_.size() - out_off_, n);
    if (st == IoStatus::kWouldBlock) break;
    if (st != IoStatus::kOk) return close();
    out_off_ += n;
  }
  if (out_off_ == out_.size()) {
    out_.clear();
    out_off_ = 0;
  } else if (out_off_ >= kCompactAt && out_off_ >= out_.size() - out_off_) {
    // A reader that never quite catches up never empties the buffer: drop what it has read, or
    // out_ would grow by everything ever sent. Moving the rest costs at most what was sent.
    out_.erase(0, out_off_);
    out_off_ = 0;
  }
  after_flush();
}

void Connection::after_flush() {
  std::size_t unsent = out_.size() - out_off_;
  if (!queue_.empty() && queue_.front()->drained_ && unsent <= Responder::kLowMark)
    loop_.defer(std::exchange(queue_.front()->drained_, nullptr));
  if (close_when_flushed_ && unsent == 0 && !lingering_) start_lingering_close();
}

void Connection::response_finished() {
  // Only the head can leave the queue; a later response that finishes early waits its turn.
  while (!queue_.empty() && queue_.front()->finished_) {
    auto done = std::move(queue_.front());
    queue_.pop_front();
    done->conn_ = nullptr;
    if (done->close_after_) {
      close_when_flushed_ = true;
      for (auto& rest : queue_) rest->conn_ = nullptr;  // none can follow a closing response
      queue_.clear();
      break;
    }
    if (queue_.empty()) break;
    auto& next = *queue_.front();
    next.at_head_ = true;
    if (!next.pending_.empty()) write(std::exchange(next.pending_, std::string()));
  }
  if (!batching_) flush();
  if (read_blocked_ && queue_.size() < limits_.max_pipelined && !closed_) {
    read_blocked_ = false;
    // Not from inside whatever finished this response (an upstream callback, say).
    loop_.defer([this] {  // the connection outlives this turn (EventLoop::retire)
      if (closed_) return;
      parse_input();
      read_input();
    });
  }
}

// After the last response of a closing connection: stop sending, read and drop what the client
// still sends for a moment, then close. Closing at once with unread input would reset the
// connection and could destroy the response before the client reads it.
void Connection::start_lingering_close() {
  lingering_ = true;
  ::shutdown(fd_, SHUT_WR);
  in_.clear();
  in_off_ = 0;
  arm_timer(std::chrono::duration_cast<std::chrono::milliseconds>(kLingerTime));
}

void Connection::arm_timer(std::chrono::milliseconds delay) {
  if (timer_) loop_.cancel(timer_);
  timer_ = loop_.after(delay, [this] {
    timer_ = 0;
    on_timer();
  });
}

// One timer per connection, re-armed only when it fires: nothing per request.
void Connection::on_timer() {
  if (closed_) return;
  if (lingering_) return close();
  auto now = loop_.now();
  if (!queue_.empty()) {  // responses in progress: their exchanges bound them
    arm_timer(limits_.keepalive_timeout);
    return;
  }
  if (request_started_ != EventLoop::Clock::time_point{}) {
    auto due = request_started_ + limits_.request_timeout;
    if (now >= due) {
      stop_parsing_ = true;
      auto responder = next_responder();
      responder->close_connection_after();
      handler_.on_framing_error({408, "request_timeout",
                                 "The request was not received completely within " +
                                     std::to_string(limits_.request_timeout.count() / 1000) + " s."},
                                responder);
      if (!closed_) arm_timer(limits_.request_timeout);
      return;
    }
    arm_timer(std::chrono::ceil<std::chrono::milliseconds>(due - now));
    return;
  }
  auto due = last_activity_ + limits_.keepalive_timeout;
  if (now >= due) return close();
  arm_timer(std::chrono::ceil<std::chrono::milliseconds>(due - now));
}

void Connection::close() {
  if (closed_) return;
  closed_ = true;
  if (timer_) loop_.cancel(timer_);
  timer_ = 0;
  auto queue = std::move(queue_);
  queue_.clear();
  for (auto& r : queue) {
    r->conn_ = nullptr;
    r->drained_ = nullptr;
    if (!r->finished_ && r->gone_) loop_.defer(std::exchange(r->gone_, nullptr));
  }
  stream_.reset();
  ::close(fd_);  // also leaves the epoll set
  handler_.on_closed(*this);
}

}  // namespace plexus
