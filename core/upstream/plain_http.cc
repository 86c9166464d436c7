#include "upstream/plain_http.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace plexus {
namespace {

// RFC 9110 tchar, as a table: every request checks every header name with it.
constexpr auto kTokenChars = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = t[c - 'a' + 'A'] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();
bool is_token_char(char c) { return kTokenChars[static_cast<unsigned char>(c)]; }

bool is_host_name(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  for (char c : h)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') return false;
  return true;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

// Headers the client writes itself: one Host and one framing of the body, always its own.
bool is_framing_header(std::string_view name) {
  switch (name.size()) {  // by length first: most headers match none
    case 4: return iequals(name, "host");
    case 6: return iequals(name, "expect");
    case 10: return iequals(name, "connection");
    case 14: return iequals(name, "content-length");
    case 17: return iequals(name, "transfer-encoding");
    default: return false;
  }
}

}  // namespace

std::optional<PlainHttpUrl> parse_plain_http_url(std::string_view url) {
  constexpr std::string_view scheme = "http://";
  if (url.size() < scheme.size() || !iequals(url.substr(0, scheme.size()), scheme)) return std::nullopt;
  url.remove_prefix(scheme.size());
  for (char c : url)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return std::nullopt;
  if (auto hash = url.find('#'); hash != std::string_view::npos) url = url.substr(0, hash);
  auto end = url.find_first_of("/?");
  std::string_view authority = url.substr(0, end);
  std::string_view rest = end == std::string_view::npos ? std::string_view() : url.substr(end);
  if (authority.find('@') != std::string_view::npos) return std::nullopt;  // credentials: curl's job

  PlainHttpUrl out;
  std::string_view host, port;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port = after.substr(1);
    }
    in6_addr a6;
    if (inet_pton(AF_INET6, std::string(host).c_str(), &a6) != 1) return std::nullopt;
  } else {
    auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    if (!is_host_name(host)) return std::nullopt;
  }
  if (!port.empty()) {
    if (port.size() > 5) return std::nullopt;
    unsigned value = 0;
    for (char c : port) {
      if (c < '0' || c > '9') return std::nullopt;
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535) return std::nullopt;
    out.port = static_cast<std::uint16_t>(value);
  }
  out.host = std::string(host);
  out.authority = std::string(authority);
  out.target.reserve(rest.size() + 1);
  if (rest.empty() || rest.front() == '?') out.target.push_back('/');
  out.target.append(rest);
  return out;
}

bool build_request_head(const HttpRequest& request, const PlainHttpUrl& url, std::string& head, std::string& error) {
  if (request.method.empty() || !std::all_of(request.method.begin(), request.method.end(), is_token_char)) {
    error = "the request method '" + request.method + "' is not an HTTP token";
    return false;
  }
  std::size_t size = request.method.size() + url.target.size() + url.authority.size() + 48;
  for (const auto& [name, value] : request.headers) size += name.size() + value.size() + 4;
  head.clear();
  head.reserve(size);
  head.append(request.method).append(" ").append(url.target).append(" HTTP/1.1\r\n");
  bool own_host = false;
  for (const auto& [name, value] : request.headers) {
    if (name.empty() || !std::all_of(name.begin(), name.end(), is_token_char)) {
      error = "the request header name '" + name + "' is not an HTTP token";
      return false;
    }
    if (std::any_of(value.begin(), value.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; })) {
      error = "the value of request header '" + name + "' holds a line break or NUL";
      return false;
    }
    if (is_framing_header(name)) {
      if (!iequals(name, "host") || own_host) continue;  // the body's framing is always ours
      own_host = true;
    }
    head.append(name).append(": ").append(value).append("\r\n");
  }
  if (!own_host) head.append("Host: ").append(url.authority).append("\r\n");
  bool carries_body = !request.body.empty() || request.method == "POST" || request.method == "PUT" || request.method == "PATCH";
  if (carries_body) head.append("Content-Length: ").append(std::to_string(request.body.size())).append("\r\n");
  head.append("\r\n");
  return true;
}

}  // namespace plexus
