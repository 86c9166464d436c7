#include "common/embeddings_relay.hpp"

#include <nlohmann/json.hpp>

#include "common/relay_base.hpp"

namespace plexus {
namespace {

using nlohmann::json;

class EmbeddingsRelay final : public RelayBase {
 public:
  EmbeddingsRelay(std::string name, ResponseSink& sink, EmbeddingsReader read) : RelayBase(std::move(name), sink), read_(std::move(read)) {}

  void on_data(std::string_view bytes) override {
    if (!sink_) return;
    if (!success()) return keep_error_body(bytes);
    keep_whole_body(bytes);
  }

  void on_end(TransferError error, std::string_view detail) override {
    if (!sink_ || finish_if_failed(error, detail)) return;
    std::optional<std::string> answer;
    try {
      answer = read_(body_, usage_);
    } catch (const std::exception&) {  // a field of the wrong type: not an answer we can read
      answer.reset();
    }
    if (!answer) return finish_error(Error::upstream(502, upstream() + " sent an answer that is not a list of embeddings", "upstream_protocol_error"), true);
    emitted_ = true;
    sink_->on_body(*answer);
    finish_ok();
  }

 private:
  EmbeddingsReader read_;
};

}  // namespace

std::unique_ptr<ProviderCall> start_embeddings_call(HttpClient& http, const UpstreamSpec& spec, const std::string& path,
                                                    std::string body, const EmbeddingRequest& request,
                                                    const Headers& adapter_headers, EmbeddingsReader read, ResponseSink& sink) {
  HttpRequest post = upstream_post(spec, path, std::move(body), request.request_id, request.extra_headers, adapter_headers);
  return start_relay(http, std::move(post), std::make_shared<EmbeddingsRelay>(spec.name, sink, std::move(read)));
}

std::optional<std::string> read_openai_embeddings(std::string_view body, Usage& usage) {
  json doc = json::parse(body, nullptr, false);
  if (!doc.is_object() || !doc.contains("data") || !doc["data"].is_array()) return std::nullopt;
  if (doc.contains("usage") && doc["usage"].is_object() && doc["usage"].contains("prompt_tokens") &&
      doc["usage"]["prompt_tokens"].is_number_integer()) {
    usage.prompt_tokens = doc["usage"]["prompt_tokens"].get<std::int64_t>();
    usage.known = true;
  }
  return std::string(body);
}

}  // namespace plexus
