#pragma once
// Routing without plugins: which nodes can take a request (layer 1, filter) and the order
// they are tried in by default (layer 2, score). Plugins (on_route) act between the two, on the
// views built here. Pure functions of their inputs: the exchange runs them, tests call them.
#include <chrono>
#include <cstddef>
#include <optional>
#include <vector>

#include "gateway/chat_request.hpp"
#include "nodes/node_registry.hpp"
#include "plexus/error.hpp"
#include "plexus/plugin.hpp"

namespace plexus::routing {

// Drops the nodes whose backend lacks the model, that lack what the request needs (tools,
// vision, JSON mode, context length), that are draining, or that have no capacity left. When
// none is left: `busy` when some node could serve it once it has capacity again (the caller may
// wait), else an error saying why: 503 when no backend has the model, else a 400 naming the
// missing feature (for the context length, the largest any node has).
struct Filtered {
  std::vector<Match> able;
  bool busy = false;
  std::optional<Error> error;
};
Filtered filter(const std::vector<Match>& found, const ParsedChat& chat);

// What on_route plugins see of each candidate; the caller sets the scores (the built-in order).
std::vector<Candidate> views(const std::vector<Match>& able, const ParsedChat& chat,
                             const std::string& group, std::chrono::steady_clock::time_point now);


// Indices of the candidates to try, in order: the pick first, then by score (ties keep their
// order, the config's); dropped ones left out (unless picked).
std::vector<std::size_t> order(const std::vector<Candidate>& views, std::optional<std::size_t> picked);

}  // namespace plexus::routing
