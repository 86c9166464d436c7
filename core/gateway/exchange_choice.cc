// The exchange's choice of nodes: which model (fallbacks, aliases), which candidates (the
// routing layers, the request's hints, prefix affinity, a Lua policy), and the bounded wait when
// every node that could serve is busy. The state machine itself is in exchange.cc.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>

#include "gateway/exchange.hpp"
#include "routing/candidates.hpp"

namespace plexus {

const std::string& resolve_alias(const ExchangeEnv& env, const std::string& model) {
  if (env.aliases)
    for (const auto& [alias, target] : *env.aliases)
      if (alias == model) return target;
  return model;
}

bool Exchange::untried(const Match& m) const {
  return std::find(tried_.begin(), tried_.end(), m.node->id) == tried_.end();
}

// A prompt prefix (the conversation up to message k) for one model: KV caches are per model.
std::uint64_t Exchange::prefix_key(std::size_t message, const std::string& model) const {
  return chat_.prefix_hashes[message] ^ (std::hash<std::string>{}(model) * 0x9e3779b97f4a7c15ULL);
}

// The model being tried: the request's, then its "models" fallbacks in order, after aliases.
std::string Exchange::wanted_model() const {
  const std::string& named = model_index_ == 0 ? chat_.model : chat_.hints.models[model_index_ - 1];
  return resolve_alias(env_, named);
}

// Candidates for the wanted model in the caller's group, ordered (see routing::rank and the
// request's hints); a model with none moves on to the next fallback model. Leaves order_ empty
// (and returns true) when every node that could serve is busy.
// Choose, then try the first candidate, or wait: for capacity, or for the auction's bids.
void Exchange::route() {
  if (!choose_candidates()) return;
  if (bid_round_) return;  // finish_bidding() comes back here
  if (order_.empty()) return wait_for_capacity();
  attempt();
}

bool Exchange::choose_candidates() {
  for (;;) {
    auto error = choose_for_model(wanted_model());
    if (!error) return true;
    if (model_index_ < chat_.hints.models.size()) {  // the next fallback model
      spdlog::info("request {}: no node could take '{}' ({}); trying '{}'", request_id_, wanted_model(),
                   error->message, chat_.hints.models[model_index_]);
      ++model_index_;
      tried_.clear();  // a node that failed one model may serve another
      continue;
    }
    fail(*error);
    return false;
  }
}

namespace {
bool named(const Match& m, const std::vector<std::string>& names) {
  return std::find(names.begin(), names.end(), m.node->id) != names.end() ||
         std::find(names.begin(), names.end(), m.node->name) != names.end();
}
}  // namespace

// Leaves in `able` only what this request may still use: nodes it has not failed on, and that its
// own hints (OpenRouter's "provider") allow, at its price. An error when max_price alone left
// nobody (refused rather than overspent).
std::optional<Error> Exchange::narrow(std::vector<Match>& able, const std::string& model) const {
  std::erase_if(able, [&](const Match& m) { return !untried(m); });
  const RoutingHints& h = chat_.hints;
  if (!h.only.empty()) std::erase_if(able, [&](const Match& m) { return !named(m, h.only); });
  std::erase_if(able, [&](const Match& m) { return named(m, h.ignore); });
  if (!h.allow_fallbacks && !h.order.empty()) std::erase_if(able, [&](const Match& m) { return !named(m, h.order); });
  if (h.max_prompt_price || h.max_completion_price) {
    std::size_t before = able.size();
    std::erase_if(able, [&](const Match& m) {
      return (h.max_prompt_price && m.model->price.input_per_1k > *h.max_prompt_price) ||
             (h.max_completion_price && m.model->price.output_per_1k > *h.max_completion_price);
    });
    if (before > 0 && able.empty())
      return Error::invalid_request("No node serving '" + model + "' is within the request's max_price",
                                    "provider.max_price", "no_node_within_max_price");
  }
  return std::nullopt;
}

std::optional<Error> Exchange::choose_for_model(const std::string& model) {
  order_.clear();
  next_candidate_ = 0;
  nodes_ = env_.nodes->snapshot();
  const auto& found = nodes_->find(caller_.group, model);
  if (found.empty() && !tried_.empty()) return last_error();  // the nodes that failed left with the model
  if (found.empty())
    return Error{404, "The model '" + model + "' does not exist or you do not have access to it.",
                 "invalid_request_error", "model", "model_not_found"};
  auto filtered = routing::filter(found, chat_);
  if (filtered.error) return filtered.error;
  auto able = std::move(filtered.able);
  if (auto refused = narrow(able, model)) return refused;
  if (able.empty()) {
    if (filtered.busy) return std::nullopt;  // wait for capacity
    if (!tried_.empty()) return last_error();  // every node that could serve has failed this request
    return Error{503, "No node allowed by the request's provider settings serves '" + model + "'", "server_error",
                 "provider", "no_node_allowed"};
  }
  const RoutingHints& h = chat_.hints;
  routing::Request how;
  how.policy = !h.sort.empty()                 ? *routing::policy_named(h.sort)
               : caller_.routing_policy.empty() ? env_.policy
                                               : routing::policy_named(caller_.routing_policy).value_or(env_.policy);
  how.weights = &env_.weights;
  how.region = caller_.region;
  how.cold_start = env_.cold_start;
  how.latency_bound = env_.auction_latency_bound;
  how.now = env_.loop.now();
  if (env_.prefixes) {  // the longest prefix served before, long enough to be worth its cache
    how.affinity_max_load = env_.prefix_max_load;
    for (std::size_t k = chat_.prefix_hashes.size(); k-- > 0 && chat_.prefix_chars[k] >= env_.prefix_min_chars;)
      if ((how.affinity = env_.prefixes->find(prefix_key(k, model)))) break;
  }
  if (how.policy == routing::Policy::kAuction && start_bidding(able, model)) return std::nullopt;  // back once bids are in
  how.bids = &bids_;
  std::vector<std::size_t> idx = routing::rank(able, how);
  if (!h.order.empty()) {  // the request's order first, as given; the rest as ranked
    std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
      auto pos = [&](std::size_t i) {
        for (std::size_t k = 0; k < h.order.size(); ++k)
          if (h.order[k] == able[i].node->id || h.order[k] == able[i].node->name) return k;
        return h.order.size();
      };
      return pos(a) < pos(b);
    });
  }
  if (hooks_.any(kHookRoute)) {
    // A Lua (or native) policy starts from the built-in order: the first gets the highest score.
    auto views = routing::views(able, chat_, caller_.group, how.now);
    for (std::size_t k = 0; k < idx.size(); ++k) views[idx[k]].score = static_cast<double>(idx.size() - k);
    auto route = hooks_.on_route(chat_.model, views);
    if (route.failure) return route.failure;
    idx = routing::order(views, route.picked);
  }
  if (idx.empty())
    return Error{503, "Every node for '" + model + "' was excluded by a routing plugin", "server_error", "",
                 "no_upstream_left"};
  for (std::size_t i : idx) order_.push_back(able[i]);
  return std::nullopt;
}

// Every node that could serve is busy: park in the registry's bounded queue until one has
// capacity, then choose again; a full queue or a wait past queue_timeout is a 503.
void Exchange::wait_for_capacity() {
  auto now = env_.loop.now();
  if (wait_until_ == Clock::time_point{}) wait_until_ = now + env_.queue_timeout;
  // Admission control: rather than letting latency collapse for everyone, a bounded wait and
  // then 429 with Retry-After, as a backend at capacity would say.
  auto busy = [&](const std::string& why) {
    error_headers_.emplace_back("retry-after", "1");
    fail({429, "Every node serving '" + chat_.model + "' is busy" + why + "; try again shortly",
          "rate_limit_error", "", "nodes_busy"});
  };
  if (now >= wait_until_) return busy(" and the wait for one ran out");
  std::weak_ptr<Exchange> weak = weak_from_this();
  auto retry = [weak] {
    auto self = weak.lock();
    if (!self || self->finished_ || !self->waiting_) return;
    self->waiting_.reset();
    self->env_.loop.cancel(self->wait_timer_);
    self->wait_timer_ = 0;
    // Choose again from a fresh snapshot: capacity may have come back on any node, and on the
    // timer's turn without a wake-up having reached this loop yet.
    self->route();
  };
  waiting_ = env_.nodes->wait_for_capacity(caller_.group, wanted_model(), env_.loop, retry, env_.queue_limit);
  if (!waiting_) return busy(" and " + std::to_string(env_.queue_limit) + " requests already wait for one");
  // Capacity that came back between the choice and the registration woke nobody: look again,
  // with the same filter and hints the choice used (a node with capacity that this request may
  // not use must not bring it back here, round and round).
  auto set = env_.nodes->snapshot();
  std::string model = wanted_model();
  auto filtered = routing::filter(set->find(caller_.group, model), chat_);
  if (!narrow(filtered.able, model) && !filtered.able.empty()) return env_.loop.defer(retry);
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(wait_until_ - now) + std::chrono::milliseconds(1);
  wait_timer_ = env_.loop.after(left, retry);
}

// The auction's live bids: nodes that registered with live_bids are asked their price for this
// request; the choice waits for their answers, at most auction_bid_window, once per request.
// Returns false when there is nobody to ask (the advertised prices stand).
bool Exchange::start_bidding(const std::vector<Match>& able, const std::string& model) {
  if (bids_asked_ || env_.bid_window.count() <= 0) return false;
  bids_asked_ = true;
  auto round = std::make_shared<BidRound>();
  round->loop = &env_.loop;
  std::weak_ptr<Exchange> weak = weak_from_this();
  round->on_bid = [weak](std::uint64_t node_key, Price price) {
    auto self = weak.lock();
    if (!self || !self->bid_round_) return;
    self->bids_[node_key] = price;
    if (--self->bids_pending_ == 0) self->finish_bidding();
  };
  auto estimate = static_cast<std::uint32_t>(std::min<std::size_t>(chat_.prompt_chars / 4, UINT32_MAX));
  auto max_tokens = static_cast<std::uint32_t>(std::clamp<std::int64_t>(chat_.max_tokens.value_or(0), 0, UINT32_MAX));
  for (const auto& m : able)
    if (m.node->live_bids)
      if (auto link = m.node->link.lock(); link && link->request_bid(model, estimate, max_tokens, round)) ++bids_pending_;
  if (bids_pending_ == 0) return false;
  bid_round_ = std::move(round);
  bid_timer_ = env_.loop.after(env_.bid_window, [weak] {
    if (auto self = weak.lock()) self->finish_bidding();
  });
  return true;
}

void Exchange::finish_bidding() {
  if (!bid_round_) return;
  bid_round_.reset();  // late bids find nobody
  env_.loop.cancel(bid_timer_);
  bid_timer_ = 0;
  if (!finished_) route();
}

}  // namespace plexus
