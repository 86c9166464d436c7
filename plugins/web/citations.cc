#include "citations.hpp"

namespace plexus::web {

std::vector<Citation> CitationScanner::feed(std::string_view text) {
  std::vector<Citation> out;
  for (unsigned char byte : text) {
    // Decode UTF-8 just enough to count code points and see ASCII delimiters: a continuation
    // byte is never '[', ']', '(' or ')', so multi-byte characters only need counting.
    if (pending_utf8_ > 0 && (byte & 0xC0) == 0x80) {
      --pending_utf8_;
      code_point_ = (code_point_ << 6) | (byte & 0x3F);
      if (pending_utf8_ == 0) take(code_point_, out);
      continue;
    }
    pending_utf8_ = 0;
    if (byte < 0x80) {
      take(byte, out);
    } else if ((byte & 0xE0) == 0xC0) {
      pending_utf8_ = 1, code_point_ = byte & 0x1F;
    } else if ((byte & 0xF0) == 0xE0) {
      pending_utf8_ = 2, code_point_ = byte & 0x0F;
    } else if ((byte & 0xF8) == 0xF0) {
      pending_utf8_ = 3, code_point_ = byte & 0x07;
    } else {
      take(0xFFFD, out);  // invalid: one replacement character, as decoders count it
    }
  }
  return out;
}

namespace {
void append_utf8(std::string& s, char32_t c) {
  if (c < 0x80) {
    s += static_cast<char>(c);
  } else if (c < 0x800) {
    s += static_cast<char>(0xC0 | (c >> 6));
    s += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    s += static_cast<char>(0xE0 | (c >> 12));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (c >> 18));
    s += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  }
}

bool all_digits(std::string_view s) {
  if (s.empty() || s.size() > 3) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}
}  // namespace

void CitationScanner::take(char32_t c, std::vector<Citation>& out) {
  std::size_t here = position_++;
  if (state_ != State::kText && ++marker_length_ > kMaxMarker) state_ = State::kText;
  switch (state_) {
    case State::kText:
      break;
    case State::kLabel:
      if (c == ']') {
        if (all_digits(label_)) {  // "[n]": complete as it stands
          std::size_t n = std::stoul(label_);
          if (n >= 1 && n <= sources_.size()) out.push_back({n - 1, marker_start_, here + 1});
          state_ = State::kText;
        } else {
          state_ = State::kAfterLabel;  // maybe a Markdown link: "(" must follow
        }
        return;
      }
      if (c == '[' || c == '\n') break;  // not this marker; perhaps a new one
      append_utf8(label_, c);
      return;
    case State::kAfterLabel:
      if (c == '(') {
        state_ = State::kUrl;
        url_.clear();
        return;
      }
      break;
    case State::kUrl:
      if (c == ')') {
        if (auto source = source_of_url(url_); source >= 0)
          out.push_back({static_cast<std::size_t>(source), marker_start_, here + 1});
        state_ = State::kText;
        return;
      }
      if (c == ' ' || c == '\n') {
        state_ = State::kText;
        return;
      }
      append_utf8(url_, c);
      return;
  }
  // Plain text, or the character that ended a marker that was none: it may open the next one.
  state_ = State::kText;
  if (c == '[') {
    state_ = State::kLabel;
    marker_start_ = here;
    marker_length_ = 1;
    label_.clear();
  }
}

std::ptrdiff_t CitationScanner::source_of_url(std::string_view url) const {
  auto bare = [](std::string_view u) {
    while (!u.empty() && u.back() == '/') u.remove_suffix(1);
    return u;
  };
  for (std::size_t i = 0; i < sources_.size(); ++i)
    if (bare(sources_[i].url) == bare(url)) return static_cast<std::ptrdiff_t>(i);
  return -1;
}

nlohmann::json annotation(const Source& source, const Citation& citation) {
  return {{"type", "url_citation"},
                      {"url_citation",
                       {{"url", source.url},
                        {"title", source.title},
                        {"content", source.content},
                        {"start_index", citation.start},
                        {"end_index", citation.end}}}};
}

}  // namespace plexus::web
