#include "gateway/exchange.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/json_text.hpp"
#include "common/openai_shapes.hpp"
#include "gateway/embeddings_request.hpp"
#include "gateway/error_body.hpp"
#include "ledger/ledger.hpp"
#include "receipts/receipt_chain.hpp"
#include "plugins/pipeline.hpp"

namespace plexus {

using nlohmann::json;

namespace {
constexpr std::size_t kMaxAttempts = 16;  // starts (failed or busy) before a request's error is final

// The text of a whole answer's message, for an estimate of its tokens when the backend gave none.
std::size_t message_chars(const json& completion) {
  if (!completion.contains("choices") || !completion["choices"].is_array() || completion["choices"].empty()) return 0;
  const json& m = completion["choices"][0].value("message", json::object());
  return m.contains("content") && m["content"].is_string() ? m["content"].get_ref<const std::string&>().size() : 0;
}
}  // namespace

Exchange::Exchange(ExchangeEnv& env, ParsedChat chat, Caller caller,
                   std::unique_ptr<ClientChannel> channel, std::string request_id,
                   Clock::time_point received, std::function<void()> on_release)
    : env_(env),
      chat_(std::move(chat)),
      caller_(std::move(caller)),
      channel_(std::move(channel)),
      request_id_(std::move(request_id)),
      received_(received),
      on_release_(std::move(on_release)),
      hooks_(env.pipeline, env.loop, request_id_, caller_, received + env.max_stream_duration, env.metrics),
      meter_(env.budgets ? env.budgets->find(caller_.key_id) : nullptr, chat_.prompt_chars),
      client_body_(chat_.as_sent ? chat_.as_sent : chat_.raw) {}

Error Exchange::last_error() const {
  return last_error_ ? *last_error_ : Error::upstream(502, "No upstream could serve the request", "upstream_unavailable");
}

Exchange::~Exchange() {
  if (on_release_) on_release_();
}

void Exchange::start() {
  self_ = shared_from_this();
  auto weak = weak_from_this();
  deadline_timer_ = env_.loop.after(env_.max_stream_duration, [weak] {
    if (auto self = weak.lock()) self->on_deadline();
  });
  // A plugin that paused the request resumes it here (the runner lives and dies with us).
  hooks_.set_on_resumed([this](HookRunner::RequestDecision decision) { after_request_hooks(std::move(decision)); });
  if (!meter_.admit())
    return fail(Error{402, "This key's budget is spent", "insufficient_quota", "", "budget_exceeded"});
  if (env_.rate_limits && (limits_ = env_.rate_limits->find(caller_.key_id))) {
    auto decision = metering::RateLimits::admit(*limits_, std::chrono::system_clock::now());
    rate_headers_ = std::move(decision.headers);
    if (!decision.allowed) {
      error_headers_.emplace_back("retry-after", std::to_string(decision.retry_after.count()));
      return fail(Error{429, "Rate limit reached for this key: try again in " + std::to_string(decision.retry_after.count()) + " s",
                        "requests", "", "rate_limit_exceeded"});
    }
  }
  for (std::size_t i = 0; i < chat_.plugin_ids.size(); ++i)
    if (!env_.pipeline || !env_.pipeline->provides(chat_.plugin_ids[i])) {
      bool from_suffix = i >= chat_.listed_plugins;  // ":online" asked, not the body's "plugins"
      std::string param = from_suffix ? "model" : "plugins[" + std::to_string(i) + "].id";
      return fail(Error::invalid_request(from_suffix ? "The ':online' suffix asks for the web plugin, which is not enabled on this router"
                                                     : "No plugin '" + chat_.plugin_ids[i] + "' is enabled on this router",
                                         param, "unknown_plugin"));
    }
  // A request that asks plugins for work (a search, a parse) must be one the caller could be
  // served at all: no key gets the router to search the web for a model it cannot reach.
  if (!chat_.plugin_ids.empty() && !reachable()) {
    return fail(Error{404, "The model '" + resolve_alias(env_, chat_.model) + "' does not exist or you do not have access to it.",
                      "invalid_request_error", "model", "model_not_found"});
  }
  after_request_hooks(hooks_.on_request(chat_));
}

bool Exchange::reachable() const {
  if (!env_.nodes) return true;
  auto set = env_.nodes->snapshot();
  if (!set->find(caller_.group, resolve_alias(env_, chat_.model)).empty()) return true;
  for (const auto& fallback : chat_.hints.models)
    if (!set->find(caller_.group, resolve_alias(env_, fallback)).empty()) return true;
  return false;
}

void Exchange::after_request_hooks(HookRunner::RequestDecision decision) {
  if (finished_) return;
  switch (decision.kind) {
    case HookRunner::RequestDecision::Kind::kContinue:
      route();
      return;
    case HookRunner::RequestDecision::Kind::kFail:
      fail(decision.error);
      return;
    case HookRunner::RequestDecision::Kind::kRespond:
      deliver_direct(decision.response);
      return;
    case HookRunner::RequestDecision::Kind::kPending:
      return;  // a plugin is waiting for something; the deadline timer still runs
  }
}

Headers Exchange::response_headers() const {
  Headers h;
  h.reserve(6 + hooks_.response_headers().size() + rate_headers_.size());  // room for the content type and the receipt
  h.emplace_back("x-request-id", request_id_);
  if (current_.node) {
    h.emplace_back("x-plexus-node", current_.node->id);
    h.emplace_back("x-plexus-model", current_.model->id);  // what served it (after fallbacks and aliases)
  }
  if (attempts_ > 0) h.emplace_back("x-plexus-attempts", std::to_string(attempts_));
  for (const auto& extra : hooks_.response_headers()) h.push_back(extra);
  h.insert(h.end(), rate_headers_.begin(), rate_headers_.end());
  return h;
}

void Exchange::attempt() {
  if (finished_) return;
  // The next candidate whose breaker lets a request through (a half-open one lets one probe
  // through at a time: another request may have taken it since the choice).
  auto now = env_.loop.now();
  while (next_candidate_ < order_.size() && !order_[next_candidate_].model->stats->begin_attempt(now)) ++next_candidate_;
  if (next_candidate_ >= order_.size()) {
    if (attempts_ > 0) return fail(last_error());
    // Every breaker is open: the nodes failed recently, and get no request until one probe
    // after their cooldown shows they are back.
    return fail({503, "Every node serving '" + chat_.model + "' failed recently and is cooling down; try again shortly",
                 "server_error", "", "nodes_cooling_down"});
  }
  current_ = order_[next_candidate_++];
  current_set_ = nodes_;
  ++attempts_;
  current_.node->stats.attempt_started();
  counted_in_flight_ = true;
  // The clock is read again here: the time since the request was read, within this one event
  // (parsing, plugins, routing), is the router's own, and plexus_router_overhead_seconds measures
  // it as the time to first byte from received_ less the node's from here.
  attempt_started_ = env_.loop.advance_now();
  attempt_ttft_ms_ = -1;
  // The node will hold this conversation's prefixes in its KV cache: remember where they went.
  if (env_.prefixes)
    for (std::size_t k = 0; k < chat_.prefix_hashes.size(); ++k)
      if (chat_.prefix_chars[k] >= env_.prefix_min_chars) env_.prefixes->remember(prefix_key(k, current_.model->id), current_.node->key);
  meter_.routed(routed_price());
  if (!meter_.affordable())
    return fail(Error{402, "This key's budget cannot pay for this answer at the price of '" + current_.node->id + "'",
                      "insufficient_quota", "", "budget_exceeded"});
  Provider& provider = current_.node->provider(env_.loop.index());
  if (chat_.embeddings) {
    EmbeddingRequest request = to_upstream_embeddings(chat_, current_.model->upstream_model, request_id_);
    request.extra_headers = hooks_.upstream_headers();
    call_ = provider.embed(request, *this);
    if (!call_)  // an operator listed an embedding model for an adapter that makes none
      return after_attempt({Error{502, "Node '" + current_.node->id + "' makes no embeddings", "upstream_error", "", "embeddings_unsupported"},
                            true, {}, "", {}});
    return;
  }
  ChatRequest request = to_upstream_request(chat_, current_.model->upstream_model, request_id_);
  request.extra_headers = hooks_.upstream_headers();
  call_ = provider.start(request, *this);
}

// Sends one chunk to the client, the response head first if needed.
void Exchange::emit(std::string_view chunk_json) {
  // Backends send about one token per chunk: what was delivered, if the stream is cut before the
  // backend reports usage (a node that dies mid-way), and what the key's budget pays as it goes.
  // A byte search, not a parse.
  if (chunk_json.find("\"content\":\"") != std::string_view::npos && chunk_json.find("\"content\":\"\"") == std::string_view::npos) {
    if (budget_cut_) return;  // what plugins still held when the budget ended the stream
    if (!meter_.take_token()) return cut_for_budget();
    ++content_chunks_;
  }
  std::string priced;
  if (chunk_json.find("\"usage\":{") != std::string_view::npos) chunk_json = priced = with_cost(chunk_json);
  if (!head_sent_) {
    head_sent_ = true;
    channel_->begin_stream(response_headers());
  }
  channel_->send_event(chunk_json);
}

// The key's budget would be passed by the next token: the stream ends here, with an error event
// the client can read and [DONE], billed for what it received.
void Exchange::cut_for_budget() {
  budget_cut_ = true;
  if (call_) call_->cancel();
  Error spent{402, "This key's budget is spent: the answer was cut at the last token it could pay for", "insufficient_quota", "",
              "budget_exceeded"};
  if (!head_sent_) spent.message = "This key's budget cannot pay for this answer";
  fail(spent);  // before the first byte: a plain 402; after it: the error event and [DONE]
}

// OpenRouter's usage.cost on the usage chunk: its own token counts at the routed price.
std::string Exchange::with_cost(std::string_view usage_chunk_json) const {
  json chunk = json::parse(usage_chunk_json, nullptr, false);
  if (!chunk.is_object() || !chunk.contains("usage") || !chunk["usage"].is_object()) return std::string(usage_chunk_json);
  json& u = chunk["usage"];
  std::int64_t in = u.value("prompt_tokens", 0), out = u.value("completion_tokens", 0);
  u["cost"] = metering::cost_of(meter_.price(), in, out);
  return chunk.dump(-1, ' ', false, json::error_handler_t::replace);
}

// The request as billed: what the ledger records and its receipt claims.
metering::BilledRequest Exchange::billed(const metering::Charge& charge, int status, const std::string& error_code) const {
  metering::BilledRequest b;
  b.request_id = request_id_;
  b.key_id = caller_.key_id;
  b.group = caller_.group;
  b.model = chat_.model;
  b.node = current_.node ? current_.node->id : "-";
  b.charge = charge;
  b.status = status;
  b.error_code = error_code;
  auto wall_now = std::chrono::system_clock::now();
  auto took = std::chrono::duration_cast<std::chrono::system_clock::duration>(env_.loop.now() - received_);
  b.ended_ms = std::chrono::duration_cast<std::chrono::milliseconds>(wall_now.time_since_epoch()).count();
  b.started_ms = std::chrono::duration_cast<std::chrono::milliseconds>((wall_now - took).time_since_epoch()).count();
  return b;
}

// The request's receipt, once: what it claims is the charge the ledger records.
void Exchange::issue_receipt(const metering::Charge& charge, int status) {
  if (!env_.receipts || receipt_.seq) return;
  receipt_ = env_.receipts->issue(billed(charge, status, ""), client_body_ ? receipts::sha256_base64url(*client_body_) : "");
}

// What the request pays: the node's live bid when the auction got one, else its advertised price.
Price Exchange::routed_price() const {
  if (!current_.model) return {};
  auto bid = bids_.find(current_.node->key);
  return bid != bids_.end() ? bid->second : current_.model->price;
}

// A client that reads slower than the backend writes: pause the provider above 256 KiB queued and
// resume below 64 KiB (the kernel's socket buffer holds more besides), so a stream is never held
// whole in memory and 500 slow readers cost the router about 150 MiB, not half a gigabyte.
void Exchange::apply_backpressure() {
  constexpr std::size_t kHigh = 256u << 10;
  if (paused_ || !call_ || finished_ || channel_->queued_bytes() < kHigh) return;
  paused_ = true;
  call_->pause();
  std::weak_ptr<Exchange> weak = weak_from_this();
  channel_->notify_when_drained([weak] {
    auto self = weak.lock();
    if (!self || !self->paused_) return;
    self->paused_ = false;
    if (self->call_ && !self->finished_) self->call_->resume();
  });
}

void Exchange::on_chunk(std::string_view chunk_json) {
  if (finished_) return;
  if (!committed_) {
    committed_ = true;
    ttft_ms_ = std::chrono::duration<double, std::milli>(env_.loop.now() - received_).count();
    attempt_ttft_ms_ = std::chrono::duration<double, std::milli>(env_.loop.now() - attempt_started_).count();
  }
  if (!hooks_.any(kHookChunk)) {
    emit(chunk_json);
    apply_backpressure();
    return;
  }
  std::string chunk(chunk_json);
  std::vector<std::string> inserted;
  bool keep = hooks_.on_chunk(chunk, inserted, false, false);
  for (const auto& extra : inserted) emit(extra);
  if (keep) emit(chunk);
  apply_backpressure();
  if (hooks_.failure()) {
    if (call_) call_->cancel();
    fail(*hooks_.failure());
  }
}

void Exchange::on_body(std::string_view body_json) {
  if (finished_) return;
  committed_ = true;
  ttft_ms_ = std::chrono::duration<double, std::milli>(env_.loop.now() - received_).count();
  attempt_ttft_ms_ = std::chrono::duration<double, std::milli>(env_.loop.now() - attempt_started_).count();
  body_ = std::string(body_json);  // sent once the provider reports usage (finish_whole)
}

// The provider may call this from inside its own start() or callbacks: the decision (and the
// destruction of the finished call) waits for the next turn of the loop.
void Exchange::on_finish(const Outcome& outcome) {
  if (finished_) return;
  std::weak_ptr<Exchange> weak = weak_from_this();
  env_.loop.defer([weak, outcome] {
    if (auto self = weak.lock()) self->after_attempt(outcome);
  });
}

// The attempt's result, for the (node, model)'s statistics and breaker. A request the node
// could not take (busy) or a client error says nothing about the node's health.
void Exchange::record_attempt(const Outcome* outcome) {
  if (!counted_in_flight_) return;
  counted_in_flight_ = false;
  current_.node->stats.attempt_ended();
  auto now = env_.loop.now();
  AttemptResult r;
  r.ttft_ms = attempt_ttft_ms_;
  if (outcome) {
    r.ok = !outcome->error;
    r.counts_as_failure = outcome->error && outcome->retryable && outcome->error->code != "node_busy";
    r.retry_after = outcome->cool_down;
    if (r.ok) {
      r.total_ms = std::chrono::duration<double, std::milli>(now - attempt_started_).count();
      double generating_s = (r.total_ms - std::max(0.0, r.ttft_ms)) / 1000;
      r.tokens_per_second = outcome->usage.tokens_per_second > 0 ? outcome->usage.tokens_per_second
                            : outcome->usage.known && generating_s > 0.001
                                ? static_cast<double>(outcome->usage.completion_tokens) / generating_s
                                : -1;
    }
  }
  current_.model->stats->record(r, now);
}

void Exchange::after_attempt(Outcome outcome) {
  call_.reset();
  record_attempt(&outcome);
  if (finished_) return;
  if (outcome.usage.known) usage_ = outcome.usage;
  finish_reason_ = outcome.finish_reason;
  if (!outcome.error) {
    if (chat_.stream) {
      close_stream(nullptr);
    } else {
      finish_whole();
    }
    return;
  }
  last_error_ = *outcome.error;
  // A backend that answered 429 said when to come back: the client hears it if that is the end.
  backend_retry_after_ = last_error_->status == 429 ? outcome.cool_down : std::chrono::seconds(0);
  bool busy = last_error_->code == "node_busy";  // its capacity went to another request first
  if (committed_ || !outcome.retryable || attempts_ >= kMaxAttempts) return fail(*last_error_);
  if (!busy) tried_.push_back(current_.node->id);
  if (next_candidate_ < order_.size()) {
    spdlog::info("request {}: node '{}' failed before answering ({}); trying the next one",
                 request_id_, current_.node->id, last_error_->message);
    return attempt();
  }
  // Every node chosen at first has failed or was busy: choose again among the nodes there are
  // now (others may have joined or gained capacity since), or wait for one.
  route();
}

// A whole answer: chunk hooks see it once, completion hooks may add fields and headers.
void Exchange::finish_whole() {
  std::vector<std::string> inserted;
  hooks_.on_chunk(body_, inserted, true, false);
  if (hooks_.failure()) {
    fail(*hooks_.failure());
    return;
  }
  run_complete_hooks(200, nullptr);
  // Settled before it is sent: the answer carries what it costs (OpenRouter's usage.cost).
  // The common case (the backend counted, no plugin adds fields) splices the cost into the
  // answer's text; anything else builds a document.
  if (!chat_.embeddings && usage_.known && hooks_.extra_fields().empty()) {
    if (auto usage_end = usage_object_end(body_)) {
      auto charge = meter_.settle(usage_, true, true);
      issue_receipt(charge, 200);
      insert_member(body_, *usage_end, "cost", json(charge.cost).dump());
      return send_whole_answer();
    }
  }
  json doc = chat_.embeddings ? client_embeddings(body_, chat_) : json::parse(body_, nullptr, false);
  if (chat_.embeddings && !doc.is_object())
    return fail({502, "Node '" + (current_.node ? current_.node->id : std::string("-")) + "' answered something that is not a list of embeddings",
                 "upstream_error", "", "upstream_protocol_error"});
  if (doc.is_object()) {
    if (!usage_.known) meter_.delivered_whole(metering::estimate_tokens(message_chars(doc)));
    auto charge = meter_.settle(usage_, true, true);
    issue_receipt(charge, 200);
    json& u = doc["usage"];
    if (!u.is_object()) u = openai::usage({charge.prompt_tokens, charge.completion_tokens, true, 0});
    u["cost"] = charge.cost;
    for (const auto& [key, value] : hooks_.extra_fields()) doc[key] = json::parse(value, nullptr, false);
    body_ = doc.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  send_whole_answer();
}

void Exchange::send_whole_answer() {
  Headers h = response_headers();
  h.emplace_back("content-type", "application/json");
  if (receipt_.seq) h.emplace_back("x-plexus-receipt", receipt_.jws);
  channel_->send_whole(200, h, std::move(body_));
  done(200, "");
}

// An answer a plugin gave in on_request: sent whole, or as a stream of the same text.
void Exchange::deliver_direct(const std::string& completion_json) {
  json doc = json::parse(completion_json, nullptr, false);
  if (!doc.is_object()) {
    fail({500, "A plugin's answer is not a JSON object", "server_error", "", "plugin_error"});
    return;
  }
  committed_ = true;
  if (doc.contains("usage") && doc["usage"].is_object()) {
    usage_.prompt_tokens = doc["usage"].value("prompt_tokens", 0);
    usage_.completion_tokens = doc["usage"].value("completion_tokens", 0);
    usage_.known = true;
  }
  if (!chat_.stream) {
    body_ = doc.dump(-1, ' ', false, json::error_handler_t::replace);
    finish_whole();
    return;
  }
  openai::Answer answer{doc.value("id", openai::random_id(("chatcmpl-" + request_id_ + "-").c_str(), 8)), doc.value("model", chat_.model),
                        doc.value("created", std::int64_t{0}), ""};
  std::string content, finish = "stop";
  if (doc.contains("choices") && doc["choices"].is_array() && !doc["choices"].empty()) {
    const json& c = doc["choices"][0];
    if (c.contains("message") && c["message"].contains("content") && c["message"]["content"].is_string())
      content = c["message"]["content"].get<std::string>();
    if (c.contains("finish_reason") && c["finish_reason"].is_string()) finish = c["finish_reason"].get<std::string>();
  }
  on_chunk(openai::dump(openai::chunk(answer, {{"role", "assistant"}, {"content", content}}, nullptr)));
  on_chunk(openai::dump(openai::chunk(answer, json::object(), finish)));
  if (chat_.include_usage && usage_.known) on_chunk(openai::dump(openai::usage_chunk(answer, usage_)));
  finish_reason_ = finish;
  if (!finished_) close_stream(nullptr);
}

void Exchange::fail(const Error& error) {
  if (finished_) return;
  if (head_sent_ && chat_.stream) {
    close_stream(&error);
    return;
  }
  run_complete_hooks(error.status, &error);
  Headers h = response_headers();
  h.insert(h.end(), error_headers_.begin(), error_headers_.end());
  bool has_retry_after = std::any_of(h.begin(), h.end(), [](const auto& header) { return header.first == "retry-after"; });
  if (error.status == 429 && backend_retry_after_.count() > 0 && !has_retry_after)
    h.emplace_back("retry-after", std::to_string(backend_retry_after_.count()));
  h.emplace_back("content-type", "application/json");
  channel_->send_whole(error.status, h, error_body(error));
  done(error.status, error.code.empty() ? error.type : error.code);
}

// Ends a stream: chunk hooks flush what they hold, completion hooks may add a last chunk, an
// error event when it failed (never a silent truncation), then [DONE] and the last HTTP chunk.
void Exchange::close_stream(const Error* error) {
  std::string none;
  std::vector<std::string> inserted;
  hooks_.on_chunk(none, inserted, false, true);
  for (const auto& extra : inserted) emit(extra);
  run_complete_hooks(200, error);
  if (!hooks_.extra_fields().empty()) {
    json last = openai::empty_chunk(openai::new_answer(request_id_, chat_.model));
    for (const auto& [key, value] : hooks_.extra_fields()) last[key] = json::parse(value, nullptr, false);
    emit(openai::dump(last));
  }
  if (!head_sent_) {
    head_sent_ = true;
    channel_->begin_stream(response_headers());
  }
  if (error) {
    std::string body = error_body(*error);
    channel_->end_stream(&body);
  } else {
    channel_->end_stream(nullptr);
  }
  done(200, error ? (error->code.empty() ? error->type : error->code) : "");
}

void Exchange::run_complete_hooks(int status, const Error* error) {
  if (!hooks_.any(kHookComplete)) return;
  Completion c;
  c.status = status;
  c.stream = chat_.stream;
  c.node = current_.node ? current_.node->id : "";
  c.model = chat_.model;
  c.prompt_tokens = usage_.prompt_tokens;
  c.completion_tokens = usage_.completion_tokens;
  c.ttft_ms = ttft_ms_;
  c.total_ms = std::chrono::duration<double, std::milli>(env_.loop.now() - received_).count();
  c.finish_reason = finish_reason_;
  if (error) {
    c.error_code = error->code.empty() ? error->type : error->code;
    c.error_message = error->message;
  }
  hooks_.on_complete(c);
}

void Exchange::on_deadline() {
  deadline_timer_ = 0;
  if (finished_) return;
  if (call_) call_->cancel();
  fail(Error::upstream(504,
                       "The answer took longer than the router's limit of " +
                           std::to_string(env_.max_stream_duration.count()) + " s",
                       "max_duration_exceeded"));
}

void Exchange::client_gone() {
  if (finished_) return;
  if (call_) call_->cancel();
  Error gone{499, "The client closed the connection", "client_error", "", "client_closed"};
  run_complete_hooks(499, &gone);
  done(499, "client_closed");
}

void Exchange::done(int status, const std::string& error_code) {
  finished_ = true;
  hooks_.cancel_pause();
  // Billed for what the client received: all of it when the answer completed, else the tokens
  // that reached it (a client gone, a node lost, a budget spent).
  bool complete = status == 200 && error_code.empty() && !budget_cut_;
  auto charge = meter_.settle(usage_, complete, committed_ && current_.node);
  if (current_.node) issue_receipt(charge, status);  // streams and failures: fetched later by id
  if (limits_) metering::RateLimits::add_tokens(*limits_, charge.prompt_tokens + charge.completion_tokens, std::chrono::system_clock::now());
  record_attempt(nullptr);  // cut short (the client left, the deadline): not the node's doing
  if (deadline_timer_) env_.loop.cancel(deadline_timer_);
  deadline_timer_ = 0;
  if (wait_timer_) env_.loop.cancel(wait_timer_);
  waiting_.reset();
  if (bid_timer_) env_.loop.cancel(bid_timer_);
  bid_round_.reset();
  if (env_.ledger) env_.ledger->append({billed(charge, status, error_code), receipt_});
  if (env_.metrics) {
    metrics::RequestSample m;
    // A label is a model some node serves: a name a client made up (a 404) is counted as "-",
    // so no client can grow the metrics without bound.
    m.model = current_.node ? std::string_view(chat_.model) : std::string_view("-");
    m.asked_model = chat_.model;
    m.node = current_.node ? std::string_view(current_.node->id) : std::string_view("-");
    m.status = status;
    m.total_s = std::chrono::duration<double>(env_.loop.now() - received_).count();
    m.ttft_s = ttft_ms_ >= 0 ? ttft_ms_ / 1000 : -1;
    // What the router added before the first byte: all of the time to it but the answering
    // node's own (from that attempt's start).
    if (ttft_ms_ >= 0 && attempt_ttft_ms_ >= 0) m.overhead_s = std::max(0.0, ttft_ms_ - attempt_ttft_ms_) / 1000;
    m.prompt_tokens = charge.prompt_tokens;
    m.completion_tokens = charge.completion_tokens;
    m.cost = charge.cost;
    m.request_id = request_id_;
    m.error_code = error_code;
    env_.metrics->request(m);
  }
  if (env_.access_log) {
    AccessRecord r;
    r.request_id = request_id_;
    r.key_id = caller_.key_id;
    r.model = chat_.model;
    r.node = current_.node ? std::string_view(current_.node->id) : std::string_view("-");
    r.price = charge.price;
    r.status = status;
    r.stream = chat_.stream;
    r.usage = usage_;
    r.usage.prompt_tokens = charge.prompt_tokens;
    r.usage.completion_tokens = charge.completion_tokens;
    r.usage_estimated = charge.estimated;
    r.cost = charge.cost;
    r.error_code = error_code;
    r.ttft_ms = ttft_ms_;
    r.total_ms = std::chrono::duration<double, std::milli>(env_.loop.now() - received_).count();
    env_.access_log(r);
  }
  // The call may still be on the stack (a synchronous on_finish): drop it on the next turn.
  if (call_) {
    std::shared_ptr<ProviderCall> stale(call_.release());
    env_.loop.defer([stale] {});
  }
  // Release our self-reference last; the caller's stack may hold another shared_ptr.
  env_.loop.defer([keep = std::move(self_)] {});
}

}  // namespace plexus
