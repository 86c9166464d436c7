#include "common/http_get.hpp"

#include <memory>

namespace plexus {
namespace {

class Collect final : public HttpResponseHandler {
 public:
  explicit Collect(std::function<void(int, const std::string&)> done) : done_(std::move(done)) {}
  void on_status(int status, const Headers&) override { status_ = status; }
  void on_data(std::string_view bytes) override {
    if (body_.size() + bytes.size() <= kMax) body_.append(bytes);
  }
  void on_end(TransferError error, std::string_view) override {
    auto done = std::move(done_);
    if (done) done(error == TransferError::kNone ? status_ : 0, body_);
  }

 private:
  static constexpr std::size_t kMax = 1u << 20;
  std::function<void(int, const std::string&)> done_;
  int status_ = 0;
  std::string body_;
};

}  // namespace

void http_get(HttpClient& http, std::string url, Headers headers, std::chrono::milliseconds timeout,
              std::function<void(int, const std::string&)> done) {
  HttpRequest r;
  r.method = "GET";
  r.url = std::move(url);
  r.headers = std::move(headers);
  r.connect_timeout = timeout;
  r.first_byte_timeout = timeout;
  r.idle_timeout = timeout;
  http.start(std::move(r), std::make_shared<Collect>(std::move(done)));
}

}  // namespace plexus
