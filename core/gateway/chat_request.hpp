#pragma once
// Parsing and validation of POST /v1/chat/completions bodies. Pure functions over text, so the
// unit tests and the fuzzer drive them without a server.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "plexus/error.hpp"
#include "plexus/provider.hpp"

namespace plexus {

// OpenRouter's per-request routing hints ("models" and "provider"), validated.
struct RoutingHints {
  std::vector<std::string> models;  // fallback models, tried in order after "model"
  std::vector<std::string> order;   // nodes (id or name) to try first, in this order
  std::vector<std::string> only;    // nodes allowed (empty: any)
  std::vector<std::string> ignore;  // nodes never used
  std::string sort;                 // "price", "latency", "throughput": the policy for this request
  bool allow_fallbacks = true;      // false: only the nodes in `order`
  std::optional<double> max_prompt_price;      // per 1K prompt tokens, at most
  std::optional<double> max_completion_price;  // per 1K completion tokens, at most
  bool present = false;             // the body has "models" or "provider" (stripped before a node sees it)
};

struct ParsedChat {
  std::shared_ptr<const std::string> raw;  // the chat body's text (as the client sent it, for chat)
  // The body as the client sent it when it spoke another API (responses, messages): what its
  // receipt's body_sha256 covers. Null for chat requests (then `raw` is that body).
  std::shared_ptr<const std::string> as_sent;
  // An embeddings request (/v1/embeddings, gateway/embeddings_request.hpp): served only by
  // embedding models, through Provider::embed, never streamed.
  bool embeddings = false;
  bool base64_embeddings = false;  // encoding_format: base64
  std::string model;
  bool stream = false;
  bool include_usage = false;
  bool has_stream_options = false;  // the key is in the body (even as null)
  std::optional<std::int64_t> max_tokens;
  std::optional<std::int64_t> seed;
  std::vector<std::string> stop;
  // What the request needs of an upstream (routing skips upstreams without it).
  bool needs_tools = false;
  bool needs_vision = false;
  bool needs_json = false;
  std::size_t prompt_chars = 0;  // text in the messages, for a rough context-length check
  RoutingHints hints;
  // OpenRouter's per-request plugins ("plugins": [{"id": "web", ...}]): the ids, in order, then
  // "web" when the model ends in ":online" (`model` is without the suffix). The plugins read their
  // own options from the body; the field is stripped before a node sees it.
  std::vector<std::string> plugin_ids;
  std::size_t listed_plugins = 0;  // how many of them the body's "plugins" array names
  bool has_plugins = false;
  // For prefix affinity: a hash of the conversation up to and including each message, and the
  // text it holds by then (roles and text; images and tool payloads are left out).
  std::vector<std::uint64_t> prefix_hashes;
  std::vector<std::size_t> prefix_chars;
};

// `readable_after`: bytes past the end of `body` that may be read (see JsonText); 64 or more
// spare a copy.
std::variant<ParsedChat, Error> parse_chat_request(std::string_view body, std::size_t readable_after = 0);

// The request one upstream gets: the model renamed to the upstream's name and, for streams,
// stream_options.include_usage forced on so the router can meter every stream (the provider
// drops the usage chunk again when the client did not ask for it).
ChatRequest to_upstream_request(const ParsedChat& chat, const std::string& upstream_model,
                                const std::string& request_id);

}  // namespace plexus
