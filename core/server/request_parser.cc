#include "server/request_parser.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/basic_parser.hpp>

#include <algorithm>
#include <cctype>

#include "common/padded_text.hpp"

namespace plexus {
namespace http = boost::beast::http;

namespace {

constexpr std::size_t kMaxHeaderFields = 256;

// Beast's parser with our callbacks: the request line, the header fields and the body go
// straight into the IncomingRequest being built (no fields container in between, no second
// copy of each field), and what RFC 9112's checks need is noted on the way.
struct BeastParser final : http::basic_parser<true> {
  IncomingRequest request;
  std::size_t fields = 0;  // in the header (trailers are not kept)
  bool header_done = false;
  bool too_many_fields = false;
  unsigned version = 11;
  std::size_t hosts = 0, content_lengths = 0, transfer_encodings = 0;
  std::size_t transfer_encoding_at = 0, expect_at = SIZE_MAX;

  void on_request_impl(http::verb, boost::beast::string_view method, boost::beast::string_view target, int v,
                       boost::beast::error_code&) override {
    request.method.assign(method.data(), method.size());
    request.target.assign(target.data(), target.size());
    request.headers.reserve(16);  // one allocation for the fields of most requests
    version = static_cast<unsigned>(v);
  }
  void on_response_impl(int, boost::beast::string_view, int, boost::beast::error_code&) override {}
  void on_field_impl(http::field name, boost::beast::string_view name_string, boost::beast::string_view value,
                     boost::beast::error_code&) override {
    if (header_done) return;  // a chunked body's trailer: never passes for a header
    if (++fields > kMaxHeaderFields) {
      too_many_fields = true;
      return;
    }
    if (name == http::field::host) ++hosts;
    if (name == http::field::content_length) ++content_lengths;
    if (name == http::field::transfer_encoding && transfer_encodings++ == 0) transfer_encoding_at = request.headers.size();
    if (name == http::field::expect && expect_at == SIZE_MAX) expect_at = request.headers.size();
    std::string lower(name_string.data(), name_string.size());
    for (auto& c : lower)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    request.headers.emplace_back(std::move(lower), std::string(value.data(), value.size()));
  }
  void on_header_impl(boost::beast::error_code&) override { header_done = true; }
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, boost::beast::error_code&) override {
    if (length) request.body.reserve(static_cast<std::size_t>(*length) + kJsonPadding);  // bounded by body_limit
  }
  std::size_t on_body_impl(boost::beast::string_view body, boost::beast::error_code&) override {
    append_padded(request.body, {body.data(), body.size()});  // read where it lies (padded_text.hpp)
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, boost::beast::string_view, boost::beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view body, boost::beast::error_code&) override {
    append_padded(request.body, {body.data(), body.size()});
    return body.size();
  }
  void on_finish_impl(boost::beast::error_code&) override {}

  const std::string* header_at(std::size_t i) const { return i < request.headers.size() ? &request.headers[i].second : nullptr; }
};

}  // namespace

struct RequestParser::Beast {
  std::optional<BeastParser> parser;
};

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}


std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

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
}

// What RFC 9112 asks of a request header that Beast leaves to its user.
std::optional<FramingError> RequestParser::check_header() {
  const BeastParser& p = *beast_->parser;
  // Many tiny fields cost far more to hold than their bytes suggest (Apache allows 100).
  if (p.too_many_fields)
    return FramingError{431, "headers_too_large",
                        "The request has more than " + std::to_string(kMaxHeaderFields) + " header fields."};
  if (p.version != 10 && p.version != 11)
    return FramingError{505, "http_version_not_supported", "Only HTTP/1.0 and HTTP/1.1 are served."};
  if (p.version == 11 && p.hosts == 0)
    return bad_request("An HTTP/1.1 request must carry a Host header.");
  if (p.hosts > 1) return bad_request("The request carries more than one Host header.");
  if (p.transfer_encodings > 0) {
    // Only "chunked" alone is understood: anything else would leave the body's end unknown.
    if (p.version == 10) return bad_request("HTTP/1.0 requests cannot use Transfer-Encoding.");
    if (p.content_lengths > 0)
      return bad_request("Transfer-Encoding and Content-Length cannot both be given.");
    if (p.transfer_encodings > 1 || !iequals(trim(*p.header_at(p.transfer_encoding_at)), "chunked"))
      return FramingError{501, "unsupported_transfer_encoding",
                          "Only \"Transfer-Encoding: chunked\" is supported."};
  }
  if (p.content_lengths > 1)
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
  const BeastParser& p = *beast_->parser;
  if (!p.is_header_done() || p.is_done()) return false;
  const std::string* expect = p.header_at(p.expect_at);
  return p.version == 11 && expect && iequals(trim(*expect), "100-continue");
}

IncomingRequest RequestParser::take() {
  BeastParser& p = *beast_->parser;
  IncomingRequest r = std::move(p.request);  // the header's own fields only: trailers were never kept
  r.keep_alive = p.keep_alive();
  r.path = r.target.substr(0, r.target.find('?'));
  r.version_minor = p.version == 10 ? 0 : 1;
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
