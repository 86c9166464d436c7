#pragma once
// Incremental Server-Sent Events parser (the WHATWG event-stream format): bytes go in as they
// arrive from the network, split anywhere, and whole events come out. Lines may end in LF, CR or
// CRLF; comment lines (":") are skipped; several "data:" lines join with "\n". llama.cpp's
// server reports a failure mid-stream as an "error: {json}" line: that comes out as an event
// named "error" carrying the JSON.
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace plexus {

class SseParser {
 public:
  using OnEvent = std::function<void(std::string_view event, std::string_view data)>;

  explicit SseParser(std::size_t max_event_bytes = 16u << 20) : max_event_bytes_(max_event_bytes) {}

  // Returns false (and stops) when an event grows past max_event_bytes.
  bool feed(std::string_view bytes, const OnEvent& on_event);
  // Bytes of an event that has not ended yet (a stream cut here lost something).
  bool has_partial_event() const { return !line_.empty() || !data_.empty() || has_data_; }

 private:
  void line_done(const OnEvent& on_event);

  std::size_t max_event_bytes_;
  std::string line_;
  std::string event_;
  std::string data_;
  bool has_data_ = false;
  bool after_cr_ = false;  // last byte was CR: a following LF belongs to the same line end
};

}  // namespace plexus
