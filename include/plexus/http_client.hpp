#pragma once
// The host's asynchronous HTTP client, as providers see it. Each event loop has its own; the
// loop that owns a provider runs all its transfers and every callback below, on one thread.
// Providers never block and never spawn threads. The implementation (libcurl multi) stays
// behind this interface.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace plexus {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "POST";
  std::string url;
  Headers headers;
  std::string body;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds first_byte_timeout{60000};  // until the response status line
  std::chrono::milliseconds idle_timeout{120000};       // between two reads; never a total cap
};

enum class TransferError {
  kNone,
  kConnect,          // refused, unreachable, DNS
  kConnectTimeout,
  kFirstByteTimeout,
  kIdleTimeout,
  kProtocol,         // malformed HTTP, reset mid-response, truncated body
};

// Receives one transfer's events, in order, on the loop that started it.
class HttpResponseHandler {
 public:
  virtual ~HttpResponseHandler() = default;
  virtual void on_status(int status, const Headers& headers) = 0;
  virtual void on_data(std::string_view bytes) = 0;
  // Exactly once, last. kNone means the body ended normally.
  virtual void on_end(TransferError error, std::string_view detail) = 0;
};

using TransferId = std::uint64_t;

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  // Starts a transfer. The handler is kept alive until on_end has run or abort() returns.
  virtual TransferId start(HttpRequest request, std::shared_ptr<HttpResponseHandler> handler) = 0;
  // Stops a transfer; no callback runs for it afterwards. Unknown ids are ignored.
  virtual void abort(TransferId id) = 0;
  // Flow control: stop reading the response (TCP then slows the backend down) and go on again.
  // Callable from the transfer's own callbacks. Unknown ids are ignored.
  virtual void pause(TransferId id) = 0;
  virtual void resume(TransferId id) = 0;
};

using TimerId = std::uint64_t;

// One-shot timers on the event loop they belong to.
class Timers {
 public:
  virtual ~Timers() = default;
  virtual TimerId after(std::chrono::milliseconds delay, std::function<void()> fn) = 0;
  virtual void cancel(TimerId id) = 0;  // unknown or fired ids are ignored
};

}  // namespace plexus
