#pragma once
// The OpenAI chat-completions relay, shared by adapters whose backends speak that protocol.
#include <memory>
#include <string>

#include "plexus/provider.hpp"

namespace plexus {

struct OpenAiDialect {
  std::string chat_path = "/chat/completions";  // appended to the upstream's url
  bool usage_from_timings = false;              // llama.cpp: usage and tokens/s from "timings"
  std::string embeddings_path = "/embeddings";
};

struct OpenAiUpstream {
  UpstreamSpec spec;
  Headers extra_headers;  // from the upstream's options
  OpenAiDialect dialect;
};

// Starts one chat completion against an OpenAI-compatible backend. `settings` must outlive the
// call (it lives in the provider).
std::unique_ptr<ProviderCall> start_openai_call(const OpenAiUpstream& settings, ProviderHost& host,
                                                const ChatRequest& request, ResponseSink& sink);

// Embeddings from an OpenAI-compatible backend (POST <url>/embeddings).
std::unique_ptr<ProviderCall> start_openai_embeddings(const OpenAiUpstream& settings, ProviderHost& host,
                                                      const EmbeddingRequest& request, ResponseSink& sink);

// A provider whose backend speaks OpenAI's chat completions; adapters add what is theirs
// (llamacpp: its status endpoints).
class OpenAiCompatibleProvider : public Provider {
 public:
  OpenAiCompatibleProvider(OpenAiUpstream settings, ProviderHost& host)
      : settings_(std::move(settings)), host_(host) {}
  std::unique_ptr<ProviderCall> start(const ChatRequest& request, ResponseSink& sink) override {
    return start_openai_call(settings_, host_, request, sink);
  }
  std::unique_ptr<ProviderCall> embed(const EmbeddingRequest& request, ResponseSink& sink) override {
    return start_openai_embeddings(settings_, host_, request, sink);
  }

 protected:
  OpenAiUpstream settings_;
  ProviderHost& host_;
};

}  // namespace plexus
