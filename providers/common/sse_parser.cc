#include "common/sse_parser.hpp"

namespace plexus {
namespace {

// The first CR or LF at or after `from`. Two memchr scans: find_first_of("\r\n") calls memchr
// once per byte to test it against the set, which was 14 % of a relayed stream's instructions.
std::size_t find_line_break(std::string_view s, std::size_t from) {
  std::size_t lf = s.find('\n', from);
  std::size_t cr = s.substr(0, lf == std::string_view::npos ? s.size() : lf).find('\r', from);
  return cr != std::string_view::npos ? cr : lf;
}

}  // namespace

bool SseParser::feed(std::string_view bytes, const OnEvent& on_event) {
  size_t i = 0;
  while (i < bytes.size()) {
    if (after_cr_) {
      after_cr_ = false;
      if (bytes[i] == '\n') {
        ++i;
        continue;
      }
    }
    size_t end = find_line_break(bytes, i);
    if (end == std::string_view::npos) {
      line_.append(bytes.substr(i));
      break;
    }
    line_.append(bytes.substr(i, end - i));
    after_cr_ = bytes[end] == '\r';
    i = end + 1;
    line_done(on_event);
    if (line_.size() + data_.size() > max_event_bytes_) return false;
  }
  return line_.size() + data_.size() <= max_event_bytes_;
}

void SseParser::line_done(const OnEvent& on_event) {
  std::string_view line(line_);
  if (line.empty()) {  // blank line: dispatch
    if (has_data_) on_event(event_.empty() ? std::string_view("message") : event_, data_);
    event_.clear();
    data_.clear();
    has_data_ = false;
    return;
  }
  if (line.front() != ':') {
    auto colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value;
    if (colon != std::string_view::npos) {
      value = line.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    }
    if (field == "data") {
      if (has_data_) data_.push_back('\n');
      data_.append(value);
      has_data_ = true;
    } else if (field == "event") {
      event_.assign(value);
    } else if (field == "error") {  // llama.cpp's server: "error: {json}" for a failure mid-stream
      event_ = "error";
      if (has_data_) data_.push_back('\n');
      data_.append(value);
      has_data_ = true;
    }  // "id" and "retry" mean nothing to a relay
  }
  line_.clear();
}

}  // namespace plexus
