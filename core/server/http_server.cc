// Pistache glue. Read ../docs/architecture.md ("Threads") first; the rules that keep this safe:
//  - only a reactor thread touches a ResponseStream or calls flush(); the upstream loop sends
//    streamed bytes with Tcp::Peer::send(), which only queues them for the reactor;
//  - a whole answer may be sent from the loop through a moved ResponseWriter (send() only queues);
//  - a peer is marked idle when its request is handed off, or Pistache's header timeout would
//    write a 408 into the middle of a long stream.
#define PISTACHE_USE_SSL 1
#include "server/http_server.hpp"

#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/peer.h>

#include <nlohmann/json.hpp>

#include <spdlog/spdlog.h>

#include "gateway/error_body.hpp"
#include "loop/upstream_loop.hpp"
#include "plugins/pipeline.hpp"
#include "util/request_id.hpp"

namespace plexus {
namespace {

using namespace Pistache;
using nlohmann::json;

constexpr const char* kExchangeSlot = "plexus.exchange";

// Per connection: the exchange its latest request started, for onDisconnection. Created once per
// peer (Pistache refuses a second putData under one name); touched on that peer's reactor only.
struct ExchangeSlot {
  std::weak_ptr<Exchange> exchange;
};

std::string reason_phrase(int status) {
  return std::string(Http::codeString(static_cast<Http::Code>(status)));
}

// Pistache writes only typed headers (Raw ones are for requests): one class for any name.
class DynamicHeader final : public Http::Header::Header {
 public:
  DynamicHeader(std::string name, std::string value)
      : name_(std::move(name)), value_(std::move(value)) {}
  const char* name() const override { return name_.c_str(); }
  void write(std::ostream& os) const override { os << value_; }
#ifdef SAFE_HEADER_CAST
  uint64_t hash() const override { return Http::Header::detail::hash(name_.c_str()); }
#endif

 private:
  std::string name_;
  std::string value_;
};

// Asks the client to close the connection after this response.
void close_after(Http::ResponseWriter& writer) {
  auto& h = writer.headers();
  if (h.has<Http::Header::Connection>()) h.remove<Http::Header::Connection>();
  h.add<Http::Header::Connection>(Http::ConnectionControl::Close);
}

void add_headers(Http::ResponseWriter& writer, const Headers& headers, std::string& content_type) {
  for (const auto& [name, value] : headers) {
    if (name == "content-type")
      content_type = value;
    else
      writer.headers().add(std::make_shared<DynamicHeader>(name, value));
  }
}

// Sends a whole response with our headers; Pistache adds Content-Length.
void send_whole(Http::ResponseWriter& writer, int status, const Headers& headers, std::string body) {
  std::string content_type = "application/json";
  add_headers(writer, headers, content_type);
  writer.send(static_cast<Http::Code>(status), body, Http::Mime::MediaType::fromString(content_type));
}

// Bytes queued towards one client, shared with Pistache's write completions (reactor thread).
struct Backlog {
  explicit Backlog(UpstreamLoop& l) : loop(l) {}
  UpstreamLoop& loop;
  std::atomic<std::size_t> queued{0};
  std::atomic<bool> waiting{false};
  std::function<void()> on_drained;  // set on the loop thread before waiting turns true

  static constexpr std::size_t kLow = 256u << 10;
  void written(std::size_t n) {
    if (queued.fetch_sub(n) - n <= kLow && waiting.exchange(false)) loop.post(on_drained);
  }
};

class PistacheChannel final : public ClientChannel {
 public:
  PistacheChannel(Http::ResponseWriter writer, std::weak_ptr<Tcp::Peer> peer, UpstreamLoop& loop)
      : writer_(std::make_shared<Http::ResponseWriter>(std::move(writer))), peer_(std::move(peer)),
        backlog_(std::make_shared<Backlog>(loop)) {}

  std::size_t queued_bytes() const override { return backlog_->queued.load(); }

  void notify_when_drained(std::function<void()> on_drained) override {
    backlog_->on_drained = std::move(on_drained);
    backlog_->waiting = true;
    // The queue may have drained between the caller's check and now.
    if (backlog_->queued.load() <= Backlog::kLow && backlog_->waiting.exchange(false))
      backlog_->loop.post(backlog_->on_drained);
  }

  void send_whole(int status, const Headers& headers, std::string body) override {
    if (peer_.expired()) return;
    plexus::send_whole(*writer_, status, headers, std::move(body));
  }

  void begin_stream(const Headers& headers) override {
    std::string head =
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/event-stream\r\n"
        "Cache-Control: no-cache\r\n"
        "X-Accel-Buffering: no\r\n"
        "Transfer-Encoding: chunked\r\n";
    for (const auto& [name, value] : headers) head += name + ": " + value + "\r\n";
    head += "\r\n";
    send_chunks(std::move(head));
  }

  void send_chunks(std::string framed) override {
    auto peer = peer_.lock();
    if (!peer) return;  // the client is gone; onDisconnection cancels the exchange
    size_t n = framed.size();
    backlog_->queued += n;
    auto backlog = backlog_;
    // Resolved (or rejected, when the client is gone) once the reactor has written these bytes.
    peer->send(RawBuffer(std::move(framed), n))
        .then([backlog, n](ssize_t) { backlog->written(n); },
              [backlog, n](std::exception_ptr) { backlog->written(n); });
  }

 private:
  std::shared_ptr<Http::ResponseWriter> writer_;
  std::weak_ptr<Tcp::Peer> peer_;
  std::shared_ptr<Backlog> backlog_;
};

Error not_found(const Http::Request& req) {
  return {404, "Invalid URL (" + std::string(Http::methodString(req.method())) + " " +
                   req.resource() + ")",
          "invalid_request_error", "", "unknown_url"};
}

class Handler final : public Http::Handler {
 public:
  HTTP_PROTOTYPE(Handler)

  explicit Handler(std::shared_ptr<ServerState> state) : state_(std::move(state)) {}

  void onRequest(const Http::Request& req, Http::ResponseWriter writer) override {
    auto received = Exchange::Clock::now();
    // Pistache answers "Connection: Close" to HTTP/1.1 requests without a Connection header
    // (yet keeps the socket): clients would reconnect for every request. 1.1 means keep-alive.
    if (req.version() == Http::Version::Http11 &&
        !req.headers().tryGet<Http::Header::Connection>())
      writer.headers().remove<Http::Header::Connection>();

    std::string request_id;
    if (auto given = req.headers().tryGetRaw("X-Request-Id");
        given && is_acceptable_request_id(given->value()))
      request_id = given->value();
    else
      request_id = new_request_id();
    Headers base{{"x-request-id", request_id}};

    bool handed_off = false;
    try {
      route(req, writer, request_id, base, received, handed_off);
    } catch (const std::exception& e) {
      // Only reachable through a bug: answer, log, and keep serving.
      spdlog::error("request {}: internal error: {}", request_id, e.what());
      if (!handed_off)
        reply_error(writer, {500, "Internal error; the request id is in x-request-id", "server_error", "", "internal_error"}, base);
    }
  }

  void onDisconnection(const std::shared_ptr<Tcp::Peer>& peer) override {
    auto slot = std::static_pointer_cast<ExchangeSlot>(peer->tryGetData(kExchangeSlot));
    if (!slot) return;
    if (auto exchange = slot->exchange.lock())
      state_->env.loop.post([exchange] { exchange->client_gone(); });
  }

 private:
  void reply_error(Http::ResponseWriter& writer, const Error& error, Headers headers) {
    send_whole(writer, error.status, headers, error_body(error));
  }

  void route(const Http::Request& req, Http::ResponseWriter& writer, const std::string& request_id,
             Headers& base, Exchange::Clock::time_point received, bool& handed_off) {
    const std::string& path = req.resource();
    auto method = req.method();
    auto wrong_method = [&](const char* allowed) {
      Headers h = base;
      h.emplace_back("allow", allowed);
      reply_error(writer,
                  {405, "Method " + std::string(Http::methodString(method)) + " is not allowed on " +
                            path + "; use " + allowed,
                   "invalid_request_error", "", "method_not_allowed"},
                  h);
    };

    if (path == "/healthz") {
      if (method != Http::Method::Get) return wrong_method("GET");
      return send_whole(writer, 200, base, R"({"status":"ok"})");
    }
    if (path == "/readyz") {
      if (method != Http::Method::Get) return wrong_method("GET");
      bool draining = state_->draining.load();
      return send_whole(writer, draining ? 503 : 200, base,
                        draining ? R"({"status":"draining"})" : R"({"status":"ready"})");
    }
    if (path == "/admin/reload") {
      if (method != Http::Method::Post) return wrong_method("POST");
      return admin_reload(req, writer, base);
    }
    bool is_chat = path == "/v1/chat/completions";
    bool is_models = path == "/v1/models" || path.rfind("/v1/models/", 0) == 0;
    if (!is_chat && !is_models) return reply_error(writer, not_found(req), base);
    if (is_chat && method != Http::Method::Post) return wrong_method("POST");
    if (is_models && method != Http::Method::Get) return wrong_method("GET");

    Caller caller{"-", "public"};
    if (state_->keys.enabled()) {
      auto auth = req.headers().tryGetRaw("Authorization");
      if (!auth || bearer_token(auth->value()).empty())
        return reply_error(writer,
                           {401,
                            "You didn't provide an API key. You need to provide your API key in "
                            "an Authorization header using Bearer auth (i.e. Authorization: "
                            "Bearer YOUR_KEY).",
                            "invalid_request_error", "", "missing_api_key"},
                           base);
      auto found = state_->keys.authenticate(bearer_token(auth->value()));
      if (!found)
        return reply_error(
            writer, {401, "Incorrect API key provided.", "invalid_request_error", "", "invalid_api_key"},
            base);
      caller = *found;
    }

    if (is_models) return models(path, caller, writer, base);
    chat(req, writer, caller, request_id, base, received, handed_off);
  }

  // POST /admin/reload: re-reads every Lua plugin (as SIGHUP does). Needs a key with "admin".
  void admin_reload(const Http::Request& req, Http::ResponseWriter& writer, const Headers& base) {
    auto auth = req.headers().tryGetRaw("Authorization");
    auto caller = auth ? state_->keys.authenticate(bearer_token(auth->value())) : std::nullopt;
    if (!caller || !state_->keys.is_admin(caller->key_id))
      return reply_error(writer, {401, "An admin key is required for /admin/reload.", "invalid_request_error", "", "admin_key_required"}, base);
    auto shared = std::make_shared<Http::ResponseWriter>(std::move(writer));
    auto state = state_;
    Headers headers = base;
    state_->env.loop.post([state, shared, headers] {
      json results = json::array();
      bool ok = true;
      if (state->env.pipeline) {
        for (const auto& r : state->env.pipeline->reload()) {
          results.push_back({{"plugin", r.name}, {"reloaded", r.error.empty()}, {"error", r.error.empty() ? json() : json(r.error)}});
          ok = ok && r.error.empty();
        }
      }
      send_whole(*shared, ok ? 200 : 422, headers, json{{"plugins", results}}.dump());
    });
  }

  void models(const std::string& path, const Caller& caller, Http::ResponseWriter& writer,
              const Headers& base) {
    auto ids = state_->env.pool->models_for(caller.group);
    auto entry = [&](const std::string& id) {
      return json{{"id", id}, {"object", "model"}, {"created", kCreated}, {"owned_by", "plexus"}};
    };
    if (path == "/v1/models") {
      json data = json::array();
      for (const auto& id : ids) data.push_back(entry(id));
      return send_whole(writer, 200, base, json{{"object", "list"}, {"data", data}}.dump());
    }
    std::string id = path.substr(std::string("/v1/models/").size());
    if (std::find(ids.begin(), ids.end(), id) == ids.end())
      return reply_error(writer, model_not_found(id), base);
    send_whole(writer, 200, base, entry(id).dump());
  }

  static Error model_not_found(const std::string& model) {
    return {404, "The model '" + model + "' does not exist or you do not have access to it.",
            "invalid_request_error", "model", "model_not_found"};
  }

  void chat(const Http::Request& req, Http::ResponseWriter& writer, const Caller& caller,
            const std::string& request_id, const Headers& base, Exchange::Clock::time_point received,
            bool& handed_off) {
    if (state_->draining.load()) {
      close_after(writer);
      return reply_error(writer,
                         {503, "The router is shutting down; retry on another instance.",
                          "server_error", "", "shutting_down"},
                         base);
    }
    const std::string& body = req.body();
    if (body.size() > state_->config.server.max_body_bytes) {
      close_after(writer);
      return reply_error(writer,
                         {413,
                          "The request body is " + std::to_string(body.size()) +
                              " bytes; the limit is " +
                              std::to_string(state_->config.server.max_body_bytes) + " bytes.",
                          "invalid_request_error", "", "request_too_large"},
                         base);
    }
    auto parsed = parse_chat_request(body);
    if (auto* error = std::get_if<Error>(&parsed)) return reply_error(writer, *error, base);
    auto& chat = std::get<ParsedChat>(parsed);

    auto peer = writer.getPeer();
    if (!peer) return;  // the client already left
    auto slot = std::static_pointer_cast<ExchangeSlot>(peer->tryGetData(kExchangeSlot));
    if (!slot) {
      slot = std::make_shared<ExchangeSlot>();
      peer->putData(kExchangeSlot, slot);
    }

    if (state_->inflight.fetch_add(1) >= state_->config.server.max_inflight) {
      state_->inflight.fetch_sub(1);
      Headers h = base;
      h.emplace_back("retry-after", "1");
      return reply_error(writer,
                         {429, "The router is at capacity; retry shortly.", "rate_limit_error", "",
                          "router_at_capacity"},
                         h);
    }

    handed_off = true;
    auto channel = std::make_unique<PistacheChannel>(std::move(writer), peer, state_->env.loop);
    auto state = state_;
    auto exchange = std::make_shared<Exchange>(state_->env, std::move(chat), caller,
                                               std::move(channel), request_id, received,
                                               [state] { state->inflight.fetch_sub(1); });
    slot->exchange = exchange;
    peer->setIdle(true);  // see the top of this file
    state_->env.loop.post([exchange] { exchange->start(); });
  }

  static constexpr std::int64_t kCreated = 1735689600;  // 2025-01-01: models here have no birth date
  std::shared_ptr<ServerState> state_;
};

}  // namespace

struct HttpServer::Impl {
  std::shared_ptr<ServerState> state;
  std::unique_ptr<Http::Endpoint> endpoint;
};

HttpServer::HttpServer(std::shared_ptr<ServerState> state) : impl_(std::make_unique<Impl>()) {
  impl_->state = std::move(state);
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
  const auto& s = impl_->state->config.server;
  Address addr(s.host, Port(s.port));
  impl_->endpoint = std::make_unique<Http::Endpoint>(addr);
  auto opts = Http::Endpoint::options()
                  .threads(s.threads)
                  .flags(Tcp::Options::ReuseAddr | Tcp::Options::NoDelay)
                  // Pistache counts request line + headers + body; leave room for the headers so
                  // our own 413 (OpenAI-shaped) answers most oversized bodies.
                  .maxRequestSize(s.max_body_bytes + (256u << 10))
                  .maxResponseSize(64u << 20)
                  .headerTimeout(std::chrono::seconds(30))
                  .bodyTimeout(std::chrono::seconds(120))
                  // An idle peer (a handed-off request, a stream) is bounded by this, so it must
                  // cover the longest answer; the exchange ends streams cleanly before it fires.
                  .keepaliveTimeout(s.max_stream_duration + std::chrono::seconds(30));
  impl_->endpoint->init(opts);
  if (!s.tls_cert.empty()) impl_->endpoint->useSSL(s.tls_cert, s.tls_key);
  impl_->endpoint->setHandler(Http::make_handler<Handler>(impl_->state));
  impl_->endpoint->serveThreaded();
}

std::uint16_t HttpServer::port() const {
  return impl_->endpoint ? static_cast<std::uint16_t>(impl_->endpoint->getPort()) : 0;
}

void HttpServer::stop() {
  if (impl_->endpoint) {
    impl_->endpoint->shutdown();
    impl_->endpoint.reset();
  }
}

}  // namespace plexus
