#pragma once
// HTTP/1.1 response framing (RFC 9112) for the upstream client: the bytes a backend sends are
// outside input like any client's, so a response that cannot be framed exactly is an error,
// never a guess. Incremental and sans-I/O: any split of the input gives the same head and the
// same body bytes. Boost.Beast's parser does the grammar (Content-Length, chunked, read to
// close); no Beast type leaks out of response_parser.cc.
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "plexus/http_client.hpp"

namespace plexus {

// Receives one response's parts, in order, while ResponseParser::parse runs.
class ResponseSink {
 public:
  // The final head (1xx interim responses are skipped). Names are lower-cased.
  virtual void on_head(int status, Headers&& headers) = 0;
  // A piece of the body, de-chunked; it points into the caller's input.
  virtual void on_body(std::string_view bytes) = 0;
  // Checked before each step: false stops parse() where it is (paused, or aborted).
  virtual bool wants_more() const = 0;

 protected:
  ~ResponseSink() = default;
};

class ResponseParser {
 public:
  explicit ResponseParser(std::size_t max_header_bytes = 64u << 10);
  ~ResponseParser();
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  // Before each response. `head_request`: the request was HEAD, so no body follows the head.
  void start(bool head_request);

  enum class Status {
    kNeedMore,  // all it could use is consumed; present the rest again with what comes next
    kStopped,   // the sink stopped it (wants_more() said no): call parse() again later
    kComplete,  // the response ended; the bytes after `consumed` are not part of it
    kError,     // error() says what; the connection cannot be used again
  };
  Status parse(std::string_view data, std::size_t& consumed, ResponseSink& sink);
  // The backend closed the connection: ends a body that runs to the close, else an error.
  Status parse_eof(ResponseSink& sink);

  bool got_any() const { return got_any_; }  // some byte of a response arrived
  bool keep_alive() const;                   // after kComplete: may the connection be reused
  const std::string& error() const { return error_; }

 private:
  struct Beast;
  std::unique_ptr<Beast> beast_;
  std::size_t max_header_bytes_;
  bool head_request_ = false;
  bool got_any_ = false;
  std::string error_;
  void reset();
};

}  // namespace plexus
