#pragma once
// Incremental splitter for line-delimited streams (NDJSON, as Ollama streams): bytes go in split
// anywhere, whole lines come out without their "\n" (or "\r\n"); empty lines are skipped.
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace plexus {

class LineSplitter {
 public:
  using OnLine = std::function<void(std::string_view line)>;
  explicit LineSplitter(std::size_t max_line_bytes = 16u << 20) : max_(max_line_bytes) {}

  // Returns false (and stops) when a line grows past max_line_bytes.
  bool feed(std::string_view bytes, const OnLine& on_line);
  bool has_partial_line() const { return !pending_.empty(); }

 private:
  std::size_t max_;
  std::string pending_;
};

}  // namespace plexus
