#pragma once
// One request's meter, on its loop: the price fixed when it is routed, the tokens as they reach
// the client, the key's budget spent as they go (so concurrent streams of one key cannot
// together run past it), and the final charge.
#include <cstdint>

#include "metering/meter.hpp"

namespace plexus::metering {

struct Charge {
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  bool estimated = false;  // the backend reported no usage (or the answer was cut): counted here
  Price price;
  double cost = 0;
};

class RequestMeter {
 public:
  RequestMeter(Budgets::Entry* budget, std::size_t prompt_chars)
      : budget_(budget), prompt_estimate_(estimate_tokens(prompt_chars)) {}
  ~RequestMeter();  // gives back what a request that never settled had reserved

  // Before anything runs: false when the key's budget is spent (or cannot pay for the prompt).
  bool admit() const;
  // The node chosen: its price (a live bid, or what it advertises) is the request's.
  void routed(const Price& price) { price_ = price; }
  // At that price, whether what is left pays for the prompt and one token: else the request is
  // refused before it starts rather than cut at its first token.
  bool affordable() const;
  const Price& price() const { return price_; }

  // One more token (a content chunk) is about to reach the client. False: it would take the key
  // past its budget, and nothing was spent for it; the stream must end there.
  bool take_token();
  std::int64_t delivered() const { return delivered_; }
  // A whole answer reaches the client at once: its tokens, counted by the caller.
  void delivered_whole(std::int64_t tokens) { delivered_ = tokens; }

  // The request is over. `usage` is the backend's count when it gave one; `complete` says the
  // client received the whole answer (else it is billed for what it received). A request that
  // produced nothing for the client costs nothing. Once: later calls return the first charge.
  Charge settle(const Usage& usage, bool complete, bool answered);
  bool settled() const { return settled_; }

 private:
  void reserve(double amount);

  Budgets::Entry* budget_;  // null: no budget to enforce
  std::int64_t prompt_estimate_;
  Price price_{};
  std::int64_t delivered_ = 0;
  double reserved_ = 0;  // added to the budget's counter so far
  bool settled_ = false;
  Charge charge_;
};

}  // namespace plexus::metering
