#include "server/request_parser.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <cctype>

namespace plexus {
namespace http = boost::beast::http;

namespace {

// Beast's string_body, but the body keeps spare room for simdjson's padding, so a request is
// validated where it lies instead of being copied into a padded buffer first (json_text.hpp).
struct PaddedStringBody {
  using value_type = std::string;
  static constexpr std::size_t kPadding = 64;  // simdjson::SIMDJSON_PADDING
  static std::uint64_t size(const value_type& body) { return body.size(); }

  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(http::header<isRequest, Fields>&, value_type& body) : body_(body) {}
    void init(const boost::optional<std::uint64_t>& length, boost::beast::error_code& ec) {
      ec = {};
      if (length) body_.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(*length, body_.max_size() - kPadding)) + kPadding);
    }
    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, boost::beast::error_code& ec) {
      std::size_t extra = boost::asio::buffer_size(buffers);
      std::size_t size = body_.size();
      if (extra > body_.max_size() - size - kPadding) {
        ec = http::error::buffer_overflow;
        return 0;
      }
      if (body_.capacity() < size + extra + kPadding) body_.reserve(std::max(size + extra + kPadding, 2 * body_.capacity()));
      body_.resize(size + extra);
      boost::asio::buffer_copy(boost::asio::buffer(&body_[size], extra), buffers);
      ec = {};
      return extra;
    }
    void finish(boost::beast::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};

}  // namespace

struct RequestParser::Beast {
  std::optional<http::request_parser<PaddedStringBody>> parser;
};

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

constexpr std::size_t kMaxHeaderFields = 256;

FramingError bad_request(std::string message) {
  return {400, "invalid_request", std::move(message)};
}

// Beast's error codes, as a client should read them. Never Beast's own text: error bodies say
// what was wrong with the request in our words.
FramingError from_beast(const boost::beast::error_code& ec, std::size_t max_header,
                        std::size_t max_body) {
  if (ec == http::error::body_limit)
    return {413, "request_too_large",
            "The request body is larger than the limit of " + std::to_string(max_body) + " bytes."};
  if (ec == http::error::header_limit)
    return {431, "headers_too_large",
            "The request line and headers are larger than the limit of " +
                std::to_string(max_header) + " bytes."};
  if (ec == http::error::bad_content_length)
    return bad_request("The Content-Length header is not a valid length, or is given twice.");
  if (ec == http::error::bad_transfer_encoding)
    return bad_request("The Transfer-Encoding header is invalid or conflicts with Content-Length.");
  if (ec == http::error::bad_chunk || ec == http::error::bad_chunk_extension)
    return bad_request("The chunked request body is malformed (bad chunk size or framing).");
  if (ec == http::error::bad_field || ec == http::error::bad_value)
    return bad_request("A request header line is malformed (each needs a name, a colon and a value).");
  if (ec == http::error::bad_version)
    return {505, "http_version_not_supported", "Only HTTP/1.0 and HTTP/1.1 are served."};
  if (ec == http::error::bad_method || ec == http::error::bad_target)
    return bad_request("The HTTP request line is malformed.");
  if (ec == http::error::bad_line_ending)
    return bad_request("HTTP lines must end with CRLF.");
  return bad_request("The HTTP request is malformed.");
}

}  // namespace

const std::string* IncomingRequest::header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers)
    if (name == lower_name) return &value;
  return nullptr;
}

RequestParser::RequestParser(std::size_t max_header_bytes, std::size_t max_body_bytes)
    : beast_(std::make_unique<Beast>()),
      max_header_bytes_(max_header_bytes),
      max_body_bytes_(max_body_bytes) {
  reset();
}

RequestParser::~RequestParser() = default;

void RequestParser::reset() {
  auto& p = beast_->parser.emplace();
  p.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(max_header_bytes_, UINT32_MAX)));
  p.body_limit(max_body_bytes_);
  // Stop after the header, so it is checked before any of the body is parsed; then eager.
  p.eager(false);
  header_checked_ = false;
  header_fields_ = 0;
}

// What RFC 9112 asks of a request header that Beast leaves to its user.
std::optional<FramingError> RequestParser::check_header() {
  const auto& msg = beast_->parser->get();
  // Many tiny fields cost far more to hold than their bytes suggest (Apache allows 100).
  if (std::distance(msg.begin(), msg.end()) > static_cast<std::ptrdiff_t>(kMaxHeaderFields))
    return FramingError{431, "headers_too_large",
                        "The request has more than " + std::to_string(kMaxHeaderFields) + " header fields."};
  unsigned version = msg.version();
  if (version != 10 && version != 11)
    return FramingError{505, "http_version_not_supported", "Only HTTP/1.0 and HTTP/1.1 are served."};
  auto hosts = msg.count(http::field::host);
  if (version == 11 && hosts == 0)
    return bad_request("An HTTP/1.1 request must carry a Host header.");
  if (hosts > 1) return bad_request("The request carries more than one Host header.");
  auto te = msg.count(http::field::transfer_encoding);
  if (te > 0) {
    // Only "chunked" alone is understood: anything else would leave the body's end unknown.
    if (version == 10) return bad_request("HTTP/1.0 requests cannot use Transfer-Encoding.");
    if (msg.count(http::field::content_length) > 0)
      return bad_request("Transfer-Encoding and Content-Length cannot both be given.");
    if (te > 1 || !iequals(trim(sv(msg[http::field::transfer_encoding])), "chunked"))
      return FramingError{501, "unsupported_transfer_encoding",
                          "Only \"Transfer-Encoding: chunked\" is supported."};
  }
  if (msg.count(http::field::content_length) > 1)
    return bad_request("The request carries more than one Content-Length header.");
  return std::nullopt;
}

RequestParser::Status RequestParser::parse(std::string_view data, std::size_t& consumed) {
  consumed = 0;
  auto& p = *beast_->parser;
  while (true) {
    boost::beast::error_code ec;
    std::size_t n = p.put(boost::asio::const_buffer(data.data() + consumed, data.size() - consumed), ec);
    consumed += n;
    if (p.is_header_done() && !header_checked_) {
      header_checked_ = true;
      if (auto bad = check_header()) {
        error_ = *bad;
        return Status::kError;
      }
      header_fields_ = static_cast<std::size_t>(std::distance(p.get().begin(), p.get().end()));
      p.eager(true);
    }
    if (ec == http::error::need_more) return Status::kNeedMore;
    if (ec) {
      error_ = from_beast(ec, max_header_bytes_, max_body_bytes_);
      return Status::kError;
    }
    if (p.is_done()) return Status::kComplete;
    // Beast consumes the header and the body in separate steps: go on while bytes are left.
    if (n == 0 || consumed == data.size()) return Status::kNeedMore;
  }
}

bool RequestParser::wants_continue() const {
  const auto& p = *beast_->parser;
  if (!p.is_header_done() || p.is_done()) return false;
  const auto& msg = p.get();
  return msg.version() == 11 && iequals(trim(sv(msg[http::field::expect])), "100-continue");
}

IncomingRequest RequestParser::take() {
  auto& p = *beast_->parser;
  IncomingRequest r;
  r.keep_alive = p.keep_alive();
  auto msg = p.release();
  r.method = std::string(msg.method_string());
  r.target = std::string(msg.target());
  r.path = r.target.substr(0, r.target.find('?'));
  r.version_minor = msg.version() == 10 ? 0 : 1;
  // The header's own fields only: chunked trailers land in the same container, after them,
  // and must never pass for headers (an Authorization trailer, say).
  r.headers.reserve(header_fields_);
  auto field_it = msg.begin();
  for (std::size_t i = 0; i < header_fields_ && field_it != msg.end(); ++i, ++field_it) {
    const auto& field = *field_it;
    std::string name(field.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers.emplace_back(std::move(name), std::string(field.value()));
  }
  r.body = std::move(msg.body());
  reset();
  return r;
}

namespace {
// %XX and '+' decoded; a malformed escape is kept as written.
std::string percent_decoded(std::string_view s) {
  auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; };
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}
}  // namespace

std::vector<std::pair<std::string, std::string>> IncomingRequest::query() const {
  std::vector<std::pair<std::string, std::string>> out;
  auto mark = target.find('?');
  if (mark == std::string::npos) return out;
  std::string_view rest = std::string_view(target).substr(mark + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    out.emplace_back(percent_decoded(pair.substr(0, eq)), eq == std::string_view::npos ? "" : percent_decoded(pair.substr(eq + 1)));
  }
  return out;
}

}  // namespace plexus
