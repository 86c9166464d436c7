#pragma once
// What the router's own HTTP/1.1 client needs of a request: the URL split into where to connect
// and what to ask for, and the request head as it goes on the wire.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "plexus/http_client.hpp"

namespace plexus {

struct PlainHttpUrl {
  std::string host;       // a name, an IPv4 address, or an IPv6 address without brackets
  std::uint16_t port = 80;
  std::string authority;  // the Host header: host[:port] as written in the URL
  std::string target;     // origin-form: path and query ("/" when the URL has no path)
};

// "http://host[:port][/path][?query][#fragment]" with a plain host. Anything else (https, user
// info in the URL, spaces or control bytes, a bad port) is nullopt: libcurl takes those.
std::optional<PlainHttpUrl> parse_plain_http_url(std::string_view url);

// The request line, Host, the request's own headers, then Content-Length when there is a body
// or the method usually carries one. False (and `error` says why) when a header cannot be sent
// as given: CR, LF or NUL in it, or a name that is not a token; a header can never smuggle
// another line onto the wire.
bool build_request_head(const HttpRequest& request, const PlainHttpUrl& url, std::string& head, std::string& error);

}  // namespace plexus
