#include "routing/candidates.hpp"

#include <algorithm>
#include <string>

namespace plexus::routing {
namespace {

}  // namespace

Filtered filter(const std::vector<Match>& found, const ParsedChat& chat) {
  std::int64_t estimate = static_cast<std::int64_t>(chat.prompt_chars / 4) + chat.max_tokens.value_or(0);
  const char* missing = nullptr;
  std::int64_t largest_context = 0;
  Filtered out;
  out.able.reserve(found.size());
  for (const auto& f : found) {
    if (!f.stats->present()) continue;  // the backend says it does not have it (not pulled)
    if (f.node->draining.load(std::memory_order_relaxed)) continue;
    Capabilities caps = f.model->capabilities;
    if (caps.context_length == 0) caps.context_length = f.node->stats.context_length();
    bool too_long = caps.context_length > 0 && estimate > caps.context_length;
    const char* lacking = chat.embeddings && !caps.embeddings     ? "embeddings"
                          : !chat.embeddings && caps.embeddings   ? "chat completions (it is an embedding model: /v1/embeddings)"
                          : chat.needs_tools && !caps.tools       ? "tools"
                          : chat.needs_vision && !caps.vision     ? "images (vision)"
                          : chat.needs_json && !caps.json_mode    ? "response_format (JSON mode)"
                          : too_long                              ? "context length"
                                                                  : nullptr;
    if (!lacking) {
      if (f.node->has_capacity())
        out.able.push_back(f);
      else
        out.busy = true;
      continue;
    }
    if (!missing) missing = lacking;
    if (too_long) largest_context = std::max(largest_context, caps.context_length);
  }
  if (!out.able.empty() || out.busy) return out;
  if (!missing) {
    out.error = Error{503, "No node serving '" + chat.model + "' has the model available right now",
                      "server_error", "model", "model_unavailable"};
    return out;
  }
  std::string feature = missing;
  std::string param = feature == "embeddings" || feature.rfind("chat", 0) == 0   ? "model"
                      : feature == "tools"                                        ? "tools"
                      : feature == "context length" || feature == "images (vision)" ? "messages"
                                                                                    : "response_format";
  if (feature == "context length")
    feature += " (about " + std::to_string(estimate) + " tokens with max_tokens; the largest is " +
               std::to_string(largest_context) + ")";
  out.error = Error::invalid_request(
      "No node serving '" + chat.model + "' supports " + feature + " for this request", param,
      "unsupported_feature");
  return out;
}

std::vector<Candidate> views(const std::vector<Match>& able, const ParsedChat& chat,
                             const std::string& group, std::chrono::steady_clock::time_point now) {
  std::vector<Candidate> out;
  out.reserve(able.size());
  for (const auto& f : able) {
    const auto& st = f.node->stats;
    Candidate c;
    c.node = f.node->id;
    c.model = chat.model;
    c.group = group;
    c.region = f.node->region;
    c.healthy = f.stats->available(now) && st.ready();
    c.hot = f.stats->hot();
    c.in_flight = st.in_flight();
    auto ttft = f.stats->ttft().median_and_p95(now);
    c.latency_p50_ms = std::max(0.0, ttft.p50);
    c.latency_p95_ms = std::max(0.0, ttft.p95);
    c.price_input_per_1k = f.model->price.input_per_1k;
    c.price_output_per_1k = f.model->price.output_per_1k;
    out.push_back(std::move(c));  // scores: the caller's (the built-in order)
  }
  return out;
}

std::vector<std::size_t> order(const std::vector<Candidate>& views, std::optional<std::size_t> picked) {
  std::vector<std::size_t> idx;
  for (std::size_t i = 0; i < views.size(); ++i)
    if (!views[i].dropped || (picked && *picked == i)) idx.push_back(i);
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
    if (picked && (a == *picked) != (b == *picked)) return a == *picked;
    return views[a].score > views[b].score;
  });
  return idx;
}

}  // namespace plexus::routing
