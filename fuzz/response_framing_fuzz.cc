// HTTP/1.1 response framing of what backends send, fed as the upstream client feeds it
// (unconsumed bytes kept and presented again with the next read). Differential: the head, the
// body and how it ends must be the same whether the bytes arrive whole, split at a point the
// input chooses, or byte by byte (a split may leave one side still waiting where the other
// already saw an error, which is no disagreement). And never more body than bytes.
#include <cstdint>
#include <string>
#include <vector>

#include "upstream/response_parser.hpp"

namespace {

struct Outcome final : plexus::ResponseSink {
  int status = 0;
  int heads = 0;
  plexus::Headers headers;
  std::string body;
  int end = 0;  // 0: waiting, 1: complete, 2: error
  bool keep_alive = false;
  void on_head(int s, plexus::Headers&& h) override {
    ++heads;
    status = s;
    headers = std::move(h);
  }
  void on_body(std::string_view bytes) override { body.append(bytes); }
  bool wants_more() const override { return true; }
  bool agrees_with(const Outcome& o) const {
    if (end == 2 || o.end == 2 || end == 0 || o.end == 0)  // how far each got may differ
      return body.size() <= o.body.size() ? o.body.compare(0, body.size(), body) == 0 : body.compare(0, o.body.size(), o.body) == 0;
    return status == o.status && heads == o.heads && headers == o.headers && body == o.body && keep_alive == o.keep_alive;
  }
};

void frame(std::string_view data, const std::vector<size_t>& cuts, bool head_request, bool eof, Outcome& out) {
  plexus::ResponseParser parser(4096);
  parser.start(head_request);
  std::string buffer;
  size_t at = 0;
  auto deliver = [&](std::string_view piece) {
    buffer.append(piece);
    size_t used = 0;
    auto status = parser.parse(buffer, used, out);
    buffer.erase(0, used);
    if (status == plexus::ResponseParser::Status::kComplete) out.end = 1;
    if (status == plexus::ResponseParser::Status::kError) out.end = 2;
    return out.end == 0;
  };
  for (size_t cut : cuts) {
    if (!deliver(data.substr(at, cut - at))) break;
    at = cut;
  }
  if (out.end == 0) deliver(data.substr(at));
  if (out.end == 0 && eof) {
    auto status = parser.parse_eof(out);
    out.end = status == plexus::ResponseParser::Status::kComplete ? 1 : 2;
  }
  if (out.end == 1) out.keep_alive = parser.keep_alive();
  if (out.heads > 1 || out.body.size() > data.size()) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size < 1) return 0;
  bool head_request = bytes[0] & 0x80;
  bool eof = bytes[0] & 0x40;
  std::string_view data(reinterpret_cast<const char*>(bytes) + 1, size - 1);
  Outcome whole;
  frame(data, {}, head_request, eof, whole);
  size_t cut = data.empty() ? 0 : bytes[0] % (data.size() + 1);
  Outcome split;
  frame(data, {cut}, head_request, eof, split);
  if (!split.agrees_with(whole)) __builtin_trap();
  if (data.size() < 1024) {
    std::vector<size_t> every;
    for (size_t i = 1; i < data.size(); ++i) every.push_back(i);
    Outcome bytewise;
    frame(data, every, head_request, eof, bytewise);
    if (!bytewise.agrees_with(whole)) __builtin_trap();
  }
  return 0;
}
