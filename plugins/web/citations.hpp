#pragma once
// Finds where an answer cites its sources, as the text streams past: "[2]" (the numbered form
// the injected results ask for) or a Markdown link to one of the sources' URLs
// ("[example.org](https://example.org/page)"). Each citation becomes an OpenAI url_citation
// annotation whose start_index / end_index span the marker in the answer's text, counted in
// Unicode code points (what Python's str indexes; JavaScript counts UTF-16 units, which differ
// only outside the Basic Multilingual Plane).
//
// Nothing is held back: a citation is reported by the feed() that completes it, so the chunk
// carrying its last character can carry its annotation.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace plexus::web {

struct Source {
  std::string title;
  std::string url;
  std::string content;  // the snippet the search returned
};

struct Citation {
  std::size_t source;  // index into the sources
  std::size_t start;   // code points from the start of the answer
  std::size_t end;     // one past the marker's last code point
};

class CitationScanner {
 public:
  explicit CitationScanner(const std::vector<Source>& sources) : sources_(sources) {}
  // The next piece of the answer's text; returns the citations it completed.
  std::vector<Citation> feed(std::string_view text);

 private:
  void take(char32_t c, std::vector<Citation>& out);
  std::ptrdiff_t source_of_url(std::string_view url) const;

  enum class State { kText, kLabel, kAfterLabel, kUrl };
  static constexpr std::size_t kMaxMarker = 2048;  // a "[" this far back was not a citation

  const std::vector<Source>& sources_;
  State state_ = State::kText;
  std::size_t position_ = 0;      // code points seen
  std::size_t marker_start_ = 0;  // where the current "[" is
  std::string label_, url_;       // UTF-8
  std::size_t marker_length_ = 0;
  unsigned pending_utf8_ = 0;     // continuation bytes still expected
  char32_t code_point_ = 0;
};

// The annotation object OpenAI clients read.
nlohmann::json annotation(const Source& source, const Citation& citation);

}  // namespace plexus::web
