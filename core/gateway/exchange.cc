#include "gateway/exchange.hpp"

#include "gateway/error_body.hpp"
#include "loop/upstream_loop.hpp"
#include "server/sse_frame.hpp"

namespace plexus {

Exchange::Exchange(ExchangeEnv& env, ParsedChat chat, Caller caller,
                   std::vector<Candidate> candidates, std::unique_ptr<ClientChannel> channel,
                   std::string request_id, Clock::time_point received,
                   std::function<void()> on_release)
    : env_(env),
      chat_(std::move(chat)),
      caller_(std::move(caller)),
      candidates_(std::move(candidates)),
      channel_(std::move(channel)),
      request_id_(std::move(request_id)),
      received_(received),
      on_release_(std::move(on_release)) {
  last_error_ = Error::upstream(502, "No upstream could serve the request", "upstream_unavailable");
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
  attempt();
}

Headers Exchange::response_headers() const {
  Headers h{{"x-request-id", request_id_}};
  if (current_) h.emplace_back("x-plexus-node", current_->upstream->config.name);
  return h;
}

void Exchange::attempt() {
  if (finished_) return;
  if (next_candidate_ >= candidates_.size()) {
    fail(last_error_);
    return;
  }
  current_ = &candidates_[next_candidate_++];
  ChatRequest request = to_upstream_request(chat_, current_->upstream_model, request_id_);
  call_ = current_->upstream->provider->start(request, *this);
}

void Exchange::on_chunk(std::string_view chunk_json) {
  if (finished_) return;
  if (!output_started_) {
    output_started_ = true;
    ttft_ms_ = std::chrono::duration<double, std::milli>(Clock::now() - received_).count();
    channel_->begin_stream(response_headers());
  }
  std::string framed;
  append_sse_data_chunk(framed, chunk_json);
  channel_->send_chunks(std::move(framed));
}

void Exchange::on_body(std::string_view body_json) {
  if (finished_) return;
  output_started_ = true;
  ttft_ms_ = std::chrono::duration<double, std::milli>(Clock::now() - received_).count();
  Headers h = response_headers();
  h.emplace_back("content-type", "application/json");
  channel_->send_whole(200, h, std::string(body_json));
}

// The provider may call this from inside its own start() or callbacks: the decision (and the
// destruction of the finished call) waits for the next turn of the loop.
void Exchange::on_finish(const Outcome& outcome) {
  if (finished_) return;
  std::weak_ptr<Exchange> weak = weak_from_this();
  env_.loop.post([weak, outcome] {
    if (auto self = weak.lock()) self->after_attempt(outcome);
  });
}

void Exchange::after_attempt(Outcome outcome) {
  call_.reset();
  if (finished_) return;
  if (outcome.usage.known) usage_ = outcome.usage;
  if (!outcome.error) {
    if (chat_.stream) {
      if (!output_started_) {  // a provider that streamed nothing at all
        output_started_ = true;
        channel_->begin_stream(response_headers());
      }
      close_stream(nullptr);
    }
    done(200, "");
    return;
  }
  last_error_ = *outcome.error;
  if (!output_started_ && outcome.retryable && next_candidate_ < candidates_.size()) {
    attempt();
    return;
  }
  fail(last_error_);
}

void Exchange::fail(const Error& error) {
  if (finished_) return;
  if (output_started_ && chat_.stream) {
    close_stream(&error);
    done(200, error.code.empty() ? error.type : error.code);
    return;
  }
  if (!output_started_) {
    Headers h = response_headers();
    h.emplace_back("content-type", "application/json");
    channel_->send_whole(error.status, h, error_body(error));
  }
  done(error.status, error.code.empty() ? error.type : error.code);
}

// Ends a started stream: an error event when it failed (never a silent truncation), then
// [DONE] and the last HTTP chunk.
void Exchange::close_stream(const Error* error) {
  std::string framed;
  if (error) append_sse_data_chunk(framed, error_body(*error));
  append_http_chunk(framed, "data: [DONE]\n\n");
  framed.append(kLastHttpChunk);
  channel_->send_chunks(std::move(framed));
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
  done(499, "client_closed");
}

void Exchange::done(int status, const std::string& error_code) {
  finished_ = true;
  if (deadline_timer_) env_.loop.cancel(deadline_timer_);
  deadline_timer_ = 0;
  if (env_.access_log) {
    AccessRecord r;
    r.request_id = request_id_;
    r.key_id = caller_.key_id;
    r.model = chat_.model;
    r.node = current_ ? current_->upstream->config.name : "-";
    r.status = status;
    r.stream = chat_.stream;
    r.usage = usage_;
    r.error_code = error_code;
    r.ttft_ms = ttft_ms_;
    r.total_ms = std::chrono::duration<double, std::milli>(Clock::now() - received_).count();
    env_.access_log(r);
  }
  // The call may still be on the stack (a synchronous on_finish): drop it on the next turn.
  if (call_) {
    auto* stale = call_.release();
    env_.loop.post([stale] { delete stale; });
  }
  // Release our self-reference last; the caller's stack may hold another shared_ptr.
  auto keep = std::move(self_);
  env_.loop.post([keep] {});
}

}  // namespace plexus
