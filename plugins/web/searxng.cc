// SearxNG's JSON API: GET /search?q=...&format=json answers
//   {"query": ..., "results": [{"url", "title", "content", "engine", ...}], "answers": [...], ...}
// An instance whose settings do not enable the json format answers 403 (the default settings
// enable only html): reported as such, so the operator knows what to change.
#include <nlohmann/json.hpp>

#include "search_backend.hpp"

namespace plexus::web {
namespace {

using nlohmann::json;

// Cuts at a code point boundary, so a snippet never ends in half a character.
std::string cut_utf8(std::string text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  std::size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  text.resize(end);
  return text + "…";
}

class Searxng final : public SearchBackend {
 public:
  explicit Searxng(BackendOptions options) : options_(std::move(options)) {
    while (!options_.url.empty() && options_.url.back() == '/') options_.url.pop_back();
  }

  HttpRequest request(std::string_view query) const override {
    HttpRequest r;
    r.method = "GET";
    r.url = options_.url + "/search?q=" + url_encode(query) + "&format=json";
    if (!options_.language.empty()) r.url += "&language=" + url_encode(options_.language);
    if (!options_.categories.empty()) r.url += "&categories=" + url_encode(options_.categories);
    r.headers = {{"accept", "application/json"}};
    return r;
  }

  std::variant<std::vector<Source>, std::string> parse(int status, std::string_view body,
                                                      std::size_t max_results) const override {
    if (status == 403) return std::string("HTTP 403 (is the json format enabled in the instance's search.formats?)");
    if (status != 200) return "HTTP " + std::to_string(status);
    json doc = json::parse(body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return std::string("not JSON");
    auto results = doc.find("results");
    if (results == doc.end() || !results->is_array()) return std::string("no results array");
    std::vector<Source> out;
    for (const auto& r : *results) {
      if (out.size() >= max_results) break;
      // A result without a URL cannot be cited (the fuzzer found one with "url": "").
      if (!r.is_object() || !r.contains("url") || !r["url"].is_string() || r["url"].get_ref<const std::string&>().empty()) continue;
      Source s;
      s.url = r["url"].get<std::string>();
      s.title = r.value("title", json("")).is_string() ? r.value("title", "") : "";
      s.content = r.contains("content") && r["content"].is_string() ? cut_utf8(r["content"].get<std::string>(), options_.max_snippet_chars) : "";
      if (s.title.empty()) s.title = s.url;
      out.push_back(std::move(s));
    }
    return out;
  }

 private:
  BackendOptions options_;
};

}  // namespace

std::string url_encode(std::string_view text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::unique_ptr<SearchBackend> make_backend(const BackendOptions& options) {
  // The schema allows only the kinds listed here.
  return std::make_unique<Searxng>(options);
}

}  // namespace plexus::web
