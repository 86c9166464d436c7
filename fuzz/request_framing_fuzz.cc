// HTTP/1.1 request framing, fed as a connection feeds it (unconsumed bytes kept and presented
// again with the next read). Differential: the requests must be the same whether the bytes
// arrive whole, split at a point the input chooses, or byte by byte, and so must the error that
// ends them (Beast may see a bad request line sooner when more of it has arrived: an input that
// ends there may leave one side still waiting, which is no disagreement; and a header over the
// limit may be refused for its size before a bad line in it is seen). And never more
// requests than request lines: a body can never be read as a request.
#include <cstdint>
#include <string>
#include <vector>

#include "server/request_parser.hpp"

struct Outcome {
  std::vector<std::string> requests;  // method, target and body of each
  int error_status = 0;  // 0: no error (yet)
  bool agrees_with(const Outcome& o) const {
    // A header over the size limit may be refused as too large (431) before a bad line inside it
    // is reached (400), depending on how much had arrived: both end the connection.
    bool same_error = error_status == o.error_status || error_status == 0 || o.error_status == 0 ||
                      error_status == 431 || o.error_status == 431;
    return requests == o.requests && same_error;
  }
};

static Outcome frame(std::string_view data, const std::vector<size_t>& cuts) {
  Outcome out;
  plexus::RequestParser parser(8192, 4096);
  std::string buffer;
  size_t at = 0;
  auto deliver = [&](std::string_view piece) {
    buffer.append(piece);
    while (!buffer.empty()) {
      size_t used = 0;
      auto status = parser.parse(buffer, used);
      buffer.erase(0, used);
      if (status == plexus::RequestParser::Status::kNeedMore) return true;
      if (status == plexus::RequestParser::Status::kError) {
        out.error_status = parser.error().status;
        return false;
      }
      auto r = parser.take();
      out.requests.push_back(r.method + " " + r.target + " " + r.body);
      // The query of any target parses, each decoded part no longer than the target.
      for (const auto& [name, value] : r.query())
        if (name.size() + value.size() > r.target.size()) __builtin_trap();
    }
    return true;
  };
  for (size_t cut : cuts) {
    if (!deliver(data.substr(at, cut - at))) return out;
    at = cut;
  }
  deliver(data.substr(at));
  return out;
}

static size_t request_lines(std::string_view data) {
  size_t n = 0;
  for (size_t p = data.find("HTTP/1."); p != std::string_view::npos; p = data.find("HTTP/1.", p + 1)) ++n;
  return n;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size < 1) return 0;
  std::string_view data(reinterpret_cast<const char*>(bytes) + 1, size - 1);
  Outcome whole = frame(data, {});
  if (whole.requests.size() > request_lines(data)) __builtin_trap();
  size_t cut = data.empty() ? 0 : bytes[0] % (data.size() + 1);
  if (!frame(data, {cut}).agrees_with(whole)) __builtin_trap();
  if (data.size() < 1024) {
    std::vector<size_t> every;
    for (size_t i = 1; i < data.size(); ++i) every.push_back(i);
    if (!frame(data, every).agrees_with(whole)) __builtin_trap();
  }
  return 0;
}
