#include "upstream/response_parser.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

#include <limits>
#include <optional>

namespace plexus {
namespace http = boost::beast::http;
using boost::beast::error_code;

namespace {

constexpr std::size_t kMaxHeaderFields = 256;

std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

// Beast's error codes in our words: the text reaches logs and error bodies, so it says what was
// wrong with the backend's answer.
std::string describe(const error_code& ec, std::size_t max_header) {
  if (ec == http::error::header_limit)
    return "the response head is larger than " + std::to_string(max_header) + " bytes or has more than " +
           std::to_string(kMaxHeaderFields) + " fields";
  if (ec == http::error::bad_content_length) return "the response's Content-Length is invalid or given twice";
  if (ec == http::error::bad_transfer_encoding) return "the response's Transfer-Encoding is invalid";
  if (ec == http::error::bad_chunk || ec == http::error::bad_chunk_extension) return "a chunk of the response is malformed";
  if (ec == http::error::bad_version) return "the response is not HTTP/1.0 or HTTP/1.1";
  if (ec == http::error::bad_status || ec == http::error::bad_reason) return "the response's status line is malformed";
  if (ec == http::error::bad_field || ec == http::error::bad_value) return "a response header line is malformed";
  if (ec == http::error::bad_line_ending) return "the response's lines do not end with CRLF";
  return "the response is malformed";
}

// Beast's parser with our callbacks: the head goes to the sink once complete, body pieces as
// they are parsed (straight from the caller's input, never copied).
struct BeastParser final : http::basic_parser<false> {
  ResponseSink* sink = nullptr;
  int status = 0;
  Headers headers;
  bool header_done = false;

  void on_request_impl(http::verb, boost::beast::string_view, boost::beast::string_view, int, error_code&) override {}
  void on_response_impl(int code, boost::beast::string_view, int version, error_code& ec) override {
    if (version != 10 && version != 11) ec = http::error::bad_version;
    status = code;
  }
  void on_field_impl(http::field, boost::beast::string_view name, boost::beast::string_view value, error_code& ec) override {
    if (header_done) return;  // a chunked body's trailer: not part of the head
    if (headers.size() >= kMaxHeaderFields) {
      ec = http::error::header_limit;
      return;
    }
    std::string lower(sv(name));
    for (auto& c : lower)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    headers.emplace_back(std::move(lower), std::string(sv(value)));
  }
  void on_header_impl(error_code&) override {
    header_done = true;
    if (status >= 200) sink->on_head(status, std::move(headers));
  }
  void on_body_init_impl(boost::optional<std::uint64_t> const&, error_code&) override {}
  std::size_t on_body_impl(boost::beast::string_view body, error_code&) override {
    if (!body.empty()) sink->on_body(sv(body));
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, boost::beast::string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view body, error_code&) override {
    if (!body.empty()) sink->on_body(sv(body));
    return body.size();
  }
  void on_finish_impl(error_code&) override {}
};

}  // namespace

struct ResponseParser::Beast {
  std::optional<BeastParser> parser;
};

ResponseParser::ResponseParser(std::size_t max_header_bytes)
    : beast_(std::make_unique<Beast>()), max_header_bytes_(max_header_bytes) {
  reset();
}
ResponseParser::~ResponseParser() = default;

void ResponseParser::start(bool head_request) {
  head_request_ = head_request;
  got_any_ = false;
  error_.clear();
  reset();
}

void ResponseParser::reset() {
  beast_->parser.emplace();  // in place: Beast's parser cannot be reset, but need not be reallocated
  BeastParser& p = *beast_->parser;
  p.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(max_header_bytes_, UINT32_MAX)));
  // A stream has no length limit; the caller bounds what it keeps. (Not boost::none: Beast 1.74
  // compares the length with the optional, and anything is more than none.)
  p.body_limit(std::numeric_limits<std::uint64_t>::max());
  p.eager(false);  // one step per put(): the sink can stop between pieces
  p.skip(head_request_);
}

ResponseParser::Status ResponseParser::parse(std::string_view data, std::size_t& consumed, ResponseSink& sink) {
  consumed = 0;
  if (!data.empty()) got_any_ = true;
  while (true) {
    BeastParser& p = *beast_->parser;
    if (p.is_done()) return Status::kComplete;
    if (consumed == data.size()) return Status::kNeedMore;
    if (!sink.wants_more()) return Status::kStopped;
    p.sink = &sink;
    error_code ec;
    consumed += p.put(boost::asio::const_buffer(data.data() + consumed, data.size() - consumed), ec);
    if (ec == http::error::need_more) return Status::kNeedMore;
    if (ec) {
      error_ = describe(ec, max_header_bytes_);
      return Status::kError;
    }
    if (p.is_done() && p.status < 200) {
      if (p.status == 101) {
        error_ = "the backend switched protocols (101), which the router does not speak";
        return Status::kError;
      }
      reset();  // an interim response (100 Continue, 103 Early Hints): the real one follows
    }
  }
}

ResponseParser::Status ResponseParser::parse_eof(ResponseSink& sink) {
  BeastParser& p = *beast_->parser;
  if (p.is_done()) return Status::kComplete;
  if (!p.got_some()) {
    error_ = got_any_ ? "the connection closed before the response ended" : "the connection closed before any response";
    return Status::kError;
  }
  p.sink = &sink;
  error_code ec;
  p.put_eof(ec);
  if (ec || !p.is_done()) {
    error_ = "the connection closed before the response ended";
    return Status::kError;
  }
  return Status::kComplete;
}

bool ResponseParser::keep_alive() const { return beast_->parser->is_done() && beast_->parser->keep_alive(); }

}  // namespace plexus
