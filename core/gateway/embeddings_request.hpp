#pragma once
// POST /v1/embeddings: the request checked, as the one request type the exchange runs (marked
// `embeddings`, never streamed), and the body one node gets.
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <variant>

#include "gateway/chat_request.hpp"
#include "plexus/provider.hpp"

namespace plexus {

// model (required), input (a non-empty string, a list of them, or token ids), encoding_format
// (float or base64), dimensions, user. Errors name the field.
std::variant<ParsedChat, Error> parse_embeddings_request(std::string_view body);

// The body a node gets: the model's upstream name, encoding_format float (the router encodes
// base64 itself, so every backend is asked the same way).
EmbeddingRequest to_upstream_embeddings(const ParsedChat& request, const std::string& upstream_model,
                                        const std::string& request_id);

// A node's embeddings answer as the client asked for it: the client's model name, and each
// embedding as base64 (little-endian float32) when encoding_format was base64. Null when the
// answer is not an embeddings list.
nlohmann::json client_embeddings(std::string_view answer, const ParsedChat& request);

}  // namespace plexus
