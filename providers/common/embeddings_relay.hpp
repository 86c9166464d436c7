#pragma once
// Embeddings from an HTTP backend: one POST, one whole JSON answer, read into OpenAI's
// embeddings shape by the adapter (OpenAI-compatible servers answer in it already; Ollama's
// /api/embed does not). Errors, timeouts and Retry-After as for chat (RelayBase).
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "plexus/provider.hpp"

namespace plexus {

// Reads a backend's 2xx answer: OpenAI's embeddings JSON, with `usage` filled from the backend's
// counts; nullopt when the answer is not embeddings.
using EmbeddingsReader = std::function<std::optional<std::string>(std::string_view body, Usage& usage)>;

std::unique_ptr<ProviderCall> start_embeddings_call(HttpClient& http, const UpstreamSpec& spec, const std::string& path,
                                                    std::string body, const EmbeddingRequest& request,
                                                    const Headers& adapter_headers, EmbeddingsReader read, ResponseSink& sink);

// The reader for OpenAI-compatible backends (OpenAI, vLLM, llama.cpp server, LM Studio).
std::optional<std::string> read_openai_embeddings(std::string_view body, Usage& usage);

}  // namespace plexus
