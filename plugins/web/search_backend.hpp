#pragma once
// Where the web plugin searches. A backend turns a query into one HTTP request and the answer
// back into sources; the plugin runs the request on its loop's HTTP client. SearxNG's JSON API
// is the first kind; another kind is one more class and one more name in make_backend().
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <plexus/http_client.hpp>

#include "citations.hpp"

namespace plexus::web {

struct BackendOptions {
  std::string kind;  // "searxng"
  std::string url;   // the instance's base URL
  std::string language;
  std::string categories;
  std::size_t max_snippet_chars = 500;
};

class SearchBackend {
 public:
  virtual ~SearchBackend() = default;
  virtual HttpRequest request(std::string_view query) const = 0;
  // The sources of an answer, at most `max_results`; a string says why there are none
  // ("HTTP 403", "not JSON").
  virtual std::variant<std::vector<Source>, std::string> parse(int status, std::string_view body,
                                                              std::size_t max_results) const = 0;
};

std::unique_ptr<SearchBackend> make_backend(const BackendOptions& options);

std::string url_encode(std::string_view text);  // RFC 3986: everything but unreserved, %XX

}  // namespace plexus::web
