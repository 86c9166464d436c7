#include "common/line_splitter.hpp"

namespace plexus {

bool LineSplitter::feed(std::string_view bytes, const OnLine& on_line) {
  while (!bytes.empty()) {
    auto nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      if (pending_.size() + bytes.size() > max_) return false;
      pending_.append(bytes);
      return true;
    }
    std::string_view line;
    if (pending_.empty()) {
      line = bytes.substr(0, nl);
    } else {
      pending_.append(bytes.substr(0, nl));
      line = pending_;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > max_) return false;
    if (!line.empty()) on_line(line);
    pending_.clear();
    bytes.remove_prefix(nl + 1);
  }
  return true;
}

}  // namespace plexus
