#pragma once
// One client connection on the loop that accepted it: reads and frames requests (strict
// HTTP/1.1, pipelining), and writes their responses in request order. A response can only ever
// reach the connection object it was made for: a Responder points at its Connection, and the
// Connection forgets its responders when it closes, so a late write is dropped, never sent to
// whatever socket gets the same fd number next.
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "loop/event_loop.hpp"
#include "plexus/http_client.hpp"
#include "server/byte_stream.hpp"
#include "server/request_parser.hpp"

namespace plexus {

class Connection;

// One request's response, in that request's place in the connection's queue. Bytes written
// while an earlier response is still going out wait here. Loop thread only.
class Responder {
 public:
  // A whole response: status line, `headers` (content-type among them), Content-Length, body.
  void send_whole(int status, const Headers& headers, std::string_view body);
  // A chunked response: the head now, then framed chunks, then the last chunk.
  void begin_chunked(int status, const Headers& headers);
  void send_framed(std::string_view framed_chunks);
  void end_chunked();
  // This response ends the connection (say so before its head goes out).
  void close_connection_after() { close_after_ = true; }
  // Gives up on an unfinished response: the connection cannot be framed any further, so it
  // closes. Nothing happens once the response is finished or the client gone.
  void abandon();

  bool finished() const { return finished_; }
  bool connected() const { return conn_ != nullptr; }
  // Bytes of this response not yet written to the socket.
  std::size_t queued_bytes() const;
  // Called once (on the loop, never re-entrantly) when queued_bytes() falls to the low mark.
  void when_drained(std::function<void()> fn);
  // Called once (on the loop, never re-entrantly) if the connection closes before this
  // response is finished: the client is gone.
  void when_gone(std::function<void()> fn) { gone_ = std::move(fn); }

  static constexpr std::size_t kLowMark = 64u << 10;

 private:
  friend class Connection;
  void write(std::string_view bytes);
  void finish();
  std::string head(int status, const Headers& headers) const;

  Connection* conn_ = nullptr;  // null once the connection closed or this response went out
  bool at_head_ = false;        // earlier responses are all out: bytes go straight to the socket
  bool finished_ = false;
  bool close_after_ = false;
  bool http10_keep_alive_ = false;
  std::string pending_;  // bytes waiting for earlier responses
  std::function<void()> drained_;
  std::function<void()> gone_;
};

class ConnectionHandler {
 public:
  virtual void on_request(IncomingRequest request, std::shared_ptr<Responder> responder) = 0;
  // The request could not be framed: answer with an error; the connection closes after it.
  virtual void on_framing_error(const FramingError& error, std::shared_ptr<Responder> responder) = 0;
  virtual void on_closed(Connection& connection) = 0;

 protected:
  ~ConnectionHandler() = default;
};

struct ConnectionLimits {
  std::size_t max_header_bytes = 64u << 10;
  std::size_t max_body_bytes = 8u << 20;
  std::size_t max_pipelined = 32;  // requests parsed ahead of their responses
  std::chrono::milliseconds request_timeout{60000};    // first byte of a request to its end
  std::chrono::milliseconds keepalive_timeout{75000};  // idle between requests
};

class Connection final : public IoWatcher {
 public:
  Connection(EventLoop& loop, int fd, std::unique_ptr<ByteStream> stream,
             const ConnectionLimits& limits, ConnectionHandler& handler);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void start();
  void close();  // drops what is unsent; unfinished responses learn their client is gone

  void on_io(std::uint32_t events) override;

 private:
  friend class Responder;
  void read_input();
  void parse_input();
  std::shared_ptr<Responder> next_responder();
  void write(std::string_view bytes);
  void flush();
  void response_finished();
  void after_flush();
  void start_lingering_close();
  void on_timer();
  void arm_timer(std::chrono::milliseconds delay);

  EventLoop& loop_;
  int fd_;
  std::unique_ptr<ByteStream> stream_;
  const ConnectionLimits& limits_;
  ConnectionHandler& handler_;
  RequestParser parser_;

  std::string in_;
  std::size_t in_off_ = 0;
  std::string out_;
  std::size_t out_off_ = 0;  // out_ before it is sent
  static constexpr std::size_t kCompactAt = 64u << 10;
  std::deque<std::shared_ptr<Responder>> queue_;  // in request order; front is at the head

  bool closed_ = false;
  bool batching_ = false;       // inside read_input: writes wait for one flush at the end
  bool flush_deferred_ = false; // a flush waits for the end of the event being handled
  bool read_blocked_ = false;   // too many responses pending: stopped before EAGAIN
  bool stop_parsing_ = false;   // after a request that ends the connection, or a framing error
  bool close_when_flushed_ = false;
  bool lingering_ = false;      // half-closed after a final response: discarding input
  bool continue_sent_ = false;  // "100 Continue" went out for the request being read
  bool peer_closed_ = false;    // the client shut its side: read to the end
  TimerId timer_ = 0;
  EventLoop::Clock::time_point last_activity_;
  EventLoop::Clock::time_point request_started_{};  // epoch: no partial request buffered
};

}  // namespace plexus
