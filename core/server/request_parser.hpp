#pragma once
// HTTP/1.1 request framing (RFC 9112), strict: a request that cannot be framed exactly is an
// error, never a guess, and the connection must be closed after it (the bytes that follow can
// no longer be told apart from a smuggled request). Incremental: any split of the input gives
// the same requests. Boost.Beast's sans-I/O parser does the grammar; the checks it leaves to its
// user are here. No Beast type leaks out of request_parser.cc.
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace plexus {

struct IncomingRequest {
  std::string method;
  std::string target;  // as sent (origin-form, with the query)
  std::string path;    // target without the query
  int version_minor = 1;  // HTTP/1.x
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  bool keep_alive = true;  // false: close the connection after the response

  // The first header of that (lower-case) name, or null.
  const std::string* header(std::string_view lower_name) const;
  // The target's query as name/value pairs, percent-decoded ('+' is a space), in order.
  std::vector<std::pair<std::string, std::string>> query() const;
};

struct FramingError {
  int status = 400;  // 400, 413, 431, 501
  std::string code;  // "invalid_request", "request_too_large", "headers_too_large"...
  std::string message;
};

class RequestParser {
 public:
  RequestParser(std::size_t max_header_bytes, std::size_t max_body_bytes);
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  enum class Status { kNeedMore, kComplete, kError };
  // Parses from `data`; `consumed` is how many bytes it used (the caller keeps the rest and
  // presents it again, with what arrives next, on the next call). kComplete: take() the request;
  // the bytes after it belong to the next one. kError: error() says what; stop reading.
  Status parse(std::string_view data, std::size_t& consumed);
  // True once the current request's header is complete and it asked for "100-continue".
  bool wants_continue() const;
  IncomingRequest take();  // then parsing starts over for the next request
  const FramingError& error() const { return error_; }

 private:
  struct Beast;
  std::unique_ptr<Beast> beast_;
  std::size_t max_header_bytes_;
  std::size_t max_body_bytes_;
  FramingError error_;
  bool header_checked_ = false;
  void reset();
  std::optional<FramingError> check_header();
};

}  // namespace plexus
