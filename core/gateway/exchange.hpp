#pragma once
// One chat completion in flight: the request state machine. It asks its HookRunner what the
// plugins decide and core/routing for the candidates, tries upstreams in order,
// relays what the chosen provider produces to the client, and records the outcome. Lives on the
// event loop that received the request; the server only creates it, starts it and reports a
// vanished client.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "auth/key_store.hpp"
#include "gateway/chat_request.hpp"
#include "gateway/hook_runner.hpp"
#include "metering/billed_request.hpp"
#include "metering/rate_limits.hpp"
#include "metering/request_meter.hpp"
#include "metrics/metrics.hpp"
#include "receipts/receipt.hpp"
#include "loop/event_loop.hpp"
#include "nodes/node_registry.hpp"
#include "routing/policy.hpp"
#include "routing/prefix_index.hpp"
#include "nodes/pull/order_link.hpp"
#include "plexus/plugin.hpp"
#include "plexus/provider.hpp"

namespace plexus::ledger {
class Ledger;
}
namespace plexus::receipts {
class Chain;
}

namespace plexus {

class Pipeline;

// How an exchange answers its client. Implemented over the connection's Responder in the
// server; over a recorder in tests. Called on the exchange's loop only.
class ClientChannel {
 public:
  virtual ~ClientChannel() = default;
  // A whole answer (a chat.completion, or an OpenAI error body when status is not 200).
  virtual void send_whole(int status, const Headers& headers, std::string body) = 0;
  // 200 with the SSE headers plus `headers`; the answer streams from here on.
  virtual void begin_stream(const Headers& headers) = 0;
  // One chat.completion.chunk (JSON).
  virtual void send_event(std::string_view chunk_json) = 0;
  // The end of the stream: `error_json` (an OpenAI error body) when it failed mid-way; never a
  // silent cut. Channels that speak another API (responses, messages) translate all of these.
  virtual void end_stream(const std::string* error_json) = 0;
  // Flow control: bytes handed over but not yet written to the client's socket. When above the
  // high mark, the exchange pauses its provider and asks to be told (on the loop thread) once they
  // fall below the low mark.
  virtual std::size_t queued_bytes() const { return 0; }
  virtual void notify_when_drained(std::function<void()> on_drained) {}
};

// Views into the exchange: the access log reads it during the call, and copies nothing.
struct AccessRecord {
  std::string_view request_id;
  std::string_view key_id;
  std::string_view model;
  std::string_view node;  // "-" when no upstream was reached
  int status = 0;    // 499: the client went away first
  bool stream = false;
  Usage usage;  // tokens_per_second too, when the backend measures it
  Price price;  // the serving node's price for the model, fixed when it was routed
  bool usage_estimated = false;  // counted here (the chunks delivered): the backend reported none, or the answer was cut
  double cost = 0;               // what the key is charged: usage at the price
  std::string_view error_code;
  double ttft_ms = -1;
  double total_ms = 0;
};

// What an exchange needs from the loop it runs on. One per event loop.
struct ExchangeEnv {
  EventLoop& loop;
  std::function<void(const AccessRecord&)> access_log{};
  std::chrono::seconds max_stream_duration{3600};
  NodeRegistry* nodes = nullptr;
  // When every node that could serve a request is busy: how many requests may wait per (group,
  // model), and for how long, before a 503.
  std::size_t queue_limit = 256;
  std::chrono::milliseconds queue_timeout{10000};
  std::shared_ptr<Pipeline> pipeline{};  // this loop's plugin instances; may be null: no plugins
  routing::Policy policy = routing::Policy::kBalanced;  // unless the caller's key names another
  routing::Weights weights{};
  std::chrono::milliseconds cold_start{15000};
  const std::vector<std::pair<std::string, std::string>>* aliases = nullptr;  // routing.aliases
  routing::PrefixIndex* prefixes = nullptr;  // shared by every loop; null: no prefix affinity
  std::size_t prefix_min_chars = 1024;
  double prefix_max_load = 0.8;
  std::chrono::milliseconds auction_latency_bound{0};
  std::chrono::milliseconds bid_window{0};  // how long the auction waits for live bids; 0: none asked
  metering::Budgets* budgets = nullptr;     // keys' budgets, shared by every loop; null: none
  ledger::Ledger* ledger = nullptr;         // where every charge is recorded; null: nowhere (tests)
  double fee = 0.1;                         // the network's share of node earnings
  receipts::Chain* receipts = nullptr;      // signs one receipt per request; null: none
  metering::RateLimits* rate_limits = nullptr;  // keys' requests and tokens per minute
  metrics::Shard* metrics = nullptr;            // this loop's share of /metrics; null: none
};

// The model a request names, after the operator's aliases.
const std::string& resolve_alias(const ExchangeEnv& env, const std::string& model);

class Exchange final : public ResponseSink, public std::enable_shared_from_this<Exchange> {
 public:
  using Clock = std::chrono::steady_clock;

  Exchange(ExchangeEnv& env, ParsedChat chat, Caller caller, std::unique_ptr<ClientChannel> channel,
           std::string request_id, Clock::time_point received, std::function<void()> on_release);
  ~Exchange() override;

  void start();        // the exchange's loop
  void client_gone();  // the exchange's loop

  // ResponseSink (loop thread, called by the provider)
  void on_chunk(std::string_view chunk_json) override;
  void on_body(std::string_view body_json) override;
  void on_finish(const Outcome& outcome) override;

 private:
  void after_request_hooks(HookRunner::RequestDecision decision);
  bool reachable() const;  // some node in the caller's group serves the model or a fallback
  void route();
  bool choose_candidates();
  bool start_bidding(const std::vector<Match>& able, const std::string& model);
  void finish_bidding();
  std::optional<Error> choose_for_model(const std::string& model);
  std::optional<Error> narrow(std::vector<Match>& able, const std::string& model) const;
  std::string wanted_model() const;
  std::uint64_t prefix_key(std::size_t message, const std::string& model) const;
  void wait_for_capacity();
  void attempt();
  void after_attempt(Outcome outcome);
  void record_attempt(const Outcome* outcome);
  void deliver_direct(const std::string& completion_json);
  void emit(std::string_view chunk_json);
  void cut_for_budget();
  std::string with_cost(std::string_view usage_chunk_json) const;
  Price routed_price() const;
  void issue_receipt(const metering::Charge& charge, int status);
  metering::BilledRequest billed(const metering::Charge& charge, int status, const std::string& error_code) const;
  void apply_backpressure();
  void finish_whole();
  void send_whole_answer();  // body_ as it stands, with its headers
  void on_deadline();
  void fail(const Error& error);
  void close_stream(const Error* error);
  void run_complete_hooks(int status, const Error* error);
  void done(int status, const std::string& error_code);
  Headers response_headers() const;

  ExchangeEnv& env_;
  ParsedChat chat_;
  Caller caller_;
  bool untried(const Match& m) const;

  std::shared_ptr<const NodeSet> nodes_;  // keeps every node in order_ alive
  std::vector<Match> order_;
  std::size_t next_candidate_ = 0;
  std::vector<std::string> tried_;  // ids of the nodes that failed this request: never chosen again
  std::size_t model_index_ = 0;     // 0: the request's model; k: its k-th fallback ("models")
  // The auction's live bids (node key -> price), asked for once per request.
  std::shared_ptr<BidRound> bid_round_;  // while bids are awaited
  std::unordered_map<std::uint64_t, Price> bids_;
  std::size_t bids_pending_ = 0;
  bool bids_asked_ = false;
  std::uint64_t bid_timer_ = 0;
  std::size_t attempts_ = 0;        // every start, busy answers included
  Match current_;
  std::shared_ptr<const NodeSet> current_set_;  // keeps current_ alive while nodes_ moves on
  NodeRegistry::WaitTicket waiting_;  // parked until a node has capacity
  std::uint64_t wait_timer_ = 0;
  Clock::time_point wait_until_{};
  std::unique_ptr<ClientChannel> channel_;
  std::string request_id_;
  Clock::time_point received_;
  Clock::time_point attempt_started_;
  std::function<void()> on_release_;

  std::shared_ptr<Exchange> self_;  // keeps this alive while work is pending on the loop
  std::unique_ptr<ProviderCall> call_;
  std::uint64_t deadline_timer_ = 0;
  bool committed_ = false;    // the provider produced output: no more failover
  bool head_sent_ = false;    // the client has the response head
  bool finished_ = false;
  bool counted_in_flight_ = false;
  bool paused_ = false;  // the provider is paused: the client is not reading
  double ttft_ms_ = -1;          // from the request's arrival, for the access log
  double attempt_ttft_ms_ = -1;  // from the current attempt's start, for the node's statistics
  Usage usage_;
  std::int64_t content_chunks_ = 0;  // chunks with text sent to the client: usage when none came
  std::string finish_reason_;
  std::string body_;           // a whole answer, held for the chunk and completion hooks
  std::optional<Error> last_error_;  // the last failed attempt's
  // What to answer when no attempt is left: the last failed attempt's error, else a 502 (made on
  // demand: most requests never need it, and it is three strings).
  Error last_error() const;
  Headers error_headers_;  // sent with an error answer (Retry-After)
  std::chrono::seconds backend_retry_after_{0};  // the last node's 429 Retry-After
  HookRunner hooks_;  // after request_id_ and caller_, which it refers to
  metering::RequestMeter meter_;
  std::shared_ptr<const std::string> client_body_;  // as the client sent it, for the receipt's hash
  receipts::Receipt receipt_;  // issued once the charge is known
  metering::RateLimits::Entry* limits_ = nullptr;
  Headers rate_headers_;  // x-ratelimit-*, on every answer to a limited key
  bool budget_cut_ = false;  // the key's budget ended the stream
};

}  // namespace plexus
