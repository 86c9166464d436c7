// The "ollama" provider: Ollama's native POST /api/chat. The OpenAI request is mapped to Ollama's
// shape (sampling parameters into "options", max_tokens into num_predict, content parts into
// text and base64 "images", tool calls both ways), and Ollama's NDJSON stream is translated line by
// line, as bytes arrive, into OpenAI chunks; a whole answer into one chat.completion. Usage comes
// from prompt_eval_count / eval_count, finish_reason from done_reason.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "common/http_get.hpp"
#include "common/line_splitter.hpp"
#include "common/chunking_relay.hpp"
#include "common/embeddings_relay.hpp"
#include "common/upstream_errors.hpp"
#include "common/translated_request.hpp"
#include "plexus/provider_abi.hpp"

namespace plexus {
namespace {

using nlohmann::json;

[[noreturn]] void unsupported(const std::string& message, const std::string& param) {
  plexus::unsupported("ollama", message, param);
}

// OpenAI content (a string or parts) to Ollama's text plus base64 images.
void map_content(const json& content, const std::string& param, json& out) {
  if (content.is_string()) {
    out["content"] = content;
    return;
  }
  std::string text;
  if (content.is_array()) {
    for (std::size_t i = 0; i < content.size(); ++i) {
      const json& part = content[i];
      std::string type = part.value("type", "");
      if (type == "text") {
        text += part.value("text", "");
      } else if (type == "image_url") {
        std::string url = part.contains("image_url") && part["image_url"].is_object()
                              ? part["image_url"].value("url", "")
                              : "";
        auto comma = url.find(',');
        if (url.rfind("data:", 0) != 0 || comma == std::string::npos || url.find(";base64", 0) > comma)
          unsupported("images must be data: URLs with base64 content (Ollama cannot fetch URLs)",
                      param + "[" + std::to_string(i) + "].image_url.url");
        out["images"].push_back(url.substr(comma + 1));
      } else {
        unsupported("content parts of type '" + type + "' are not supported", param + "[" + std::to_string(i) + "].type");
      }
    }
  }
  out["content"] = text;
}

json map_request(const json& in, const std::string& model, bool stream) {
  json out = {{"model", model}, {"stream", stream}, {"messages", json::array()}};
  const json& messages = in["messages"];
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    std::string role = m.value("role", "user");
    json msg = {{"role", role == "developer" ? "system" : role == "function" ? "tool" : role}};
    if (m.contains("content") && !m["content"].is_null())
      map_content(m["content"], "messages[" + std::to_string(i) + "].content", msg);
    else
      msg["content"] = "";
    if (m.contains("tool_calls") && m["tool_calls"].is_array()) {
      for (std::size_t c = 0; c < m["tool_calls"].size(); ++c) {
        const json& call = m["tool_calls"][c];
        const json& fn = call.value("function", json::object());
        msg["tool_calls"].push_back({{"function", {{"name", fn.value("name", "")}, {"arguments", tool_call_arguments(call, i, c)}}}});
      }
    }
    if (role == "tool" && m.contains("name")) msg["tool_name"] = m["name"];
    out["messages"].push_back(std::move(msg));
  }
  json options = json::object();
  for (const char* key : {"temperature", "top_p", "top_k", "repeat_penalty", "seed", "min_p",
                          "presence_penalty", "frequency_penalty"})
    if (in.contains(key) && !in[key].is_null()) options[key] = in[key];
  if (in.contains("max_completion_tokens") && !in["max_completion_tokens"].is_null())
    options["num_predict"] = in["max_completion_tokens"];
  else if (in.contains("max_tokens") && !in["max_tokens"].is_null())
    options["num_predict"] = in["max_tokens"];
  if (in.contains("stop") && !in["stop"].is_null())
    options["stop"] = in["stop"].is_string() ? json::array({in["stop"]}) : in["stop"];
  if (!options.empty()) out["options"] = std::move(options);
  if (in.contains("tools") && !in["tools"].is_null()) out["tools"] = in["tools"];
  if (in.contains("response_format") && in["response_format"].is_object()) {
    const json& f = in["response_format"];
    std::string type = f.value("type", "text");
    if (type == "json_object") out["format"] = "json";
    if (type == "json_schema" && f.contains("json_schema") && f["json_schema"].contains("schema"))
      out["format"] = f["json_schema"]["schema"];
  }
  return out;
}

std::string finish_reason_of(const json& line, bool saw_tool_calls) {
  if (saw_tool_calls) return "tool_calls";
  std::string reason = line.value("done_reason", "stop");
  return reason == "length" ? "length" : "stop";
}

json openai_tool_calls(const json& ollama_calls, int& next_index) {
  json out = json::array();
  for (const json& call : ollama_calls) {
    const json& fn = call.value("function", json::object());
    json args = fn.contains("arguments") ? fn["arguments"] : json::object();
    int index = next_index++;
    out.push_back({{"index", index},
                   {"id", openai::random_id("call_")},
                   {"type", "function"},
                   {"function", {{"name", fn.value("name", "")}, {"arguments", args.is_string() ? args.get<std::string>() : args.dump()}}}});
  }
  return out;
}

class Relay final : public ChunkingRelay {
 public:
  Relay(const UpstreamSpec& spec, const ChatRequest& request, ResponseSink& sink)
      : ChunkingRelay(spec.name, request, sink) {}

  void on_data(std::string_view bytes) override {
    if (!sink_) return;
    if (!success()) return keep_error_body(bytes);
    if (!stream_) return keep_whole_body(bytes);
    if (!lines_.feed(bytes, [this](std::string_view line) { on_line(line); }) && sink_)
      finish_error(Error::upstream(502, upstream() + " sent an oversized NDJSON line", "upstream_protocol_error"), true);
  }

  void on_end(TransferError error, std::string_view detail) override {
    if (!sink_ || finish_if_failed(error, detail)) return;
    if (stream_) {
      if (!done_)
        finish_error(Error::upstream(502, upstream() + " ended the stream before its done line", "upstream_truncated"), true);
      return;
    }
    json doc = json::parse(body_, nullptr, false);
    if (!doc.is_object()) return finish_error(Error::upstream(502, upstream() + " sent a response that is not JSON", "upstream_protocol_error"), true);
    if (doc.contains("error")) return finish_error(Error::upstream(502, upstream() + ": " + error_text(body_), "upstream_error"), true);
    const json& message = doc.value("message", json::object());
    json out_message = {{"role", "assistant"}, {"content", message.value("content", "")}, {"refusal", nullptr}};
    bool tools = message.contains("tool_calls") && message["tool_calls"].is_array() && !message["tool_calls"].empty();
    if (tools) {
      int index = 0;
      json calls = openai_tool_calls(message["tool_calls"], index);
      for (auto& c : calls) c.erase("index");
      out_message["tool_calls"] = calls;
    }
    read_usage(doc);
    finish_reason_ = finish_reason_of(doc, tools);
    deliver_whole(std::move(out_message), finish_reason_);
    finish_ok();
  }

 private:
  std::string error_text(std::string_view text) const {
    Error e;
    read_error_body(text, e);
    return e.message.empty() ? std::string(text) : e.message;
  }

  void on_line(std::string_view line) {
    if (!sink_ || done_) return;
    json doc = json::parse(line, nullptr, false);
    if (!doc.is_object())
      return finish_error(Error::upstream(502, upstream() + " sent a malformed NDJSON line", "upstream_protocol_error"), true);
    if (doc.contains("error"))
      return finish_error(Error::upstream(502, upstream() + ": " + error_text(line), "upstream_error"), true);
    if (!emitted_) emit(chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
    const json& message = doc.contains("message") && doc["message"].is_object() ? doc["message"] : json::object();
    if (message.contains("content") && message["content"].is_string() && !message["content"].get_ref<const std::string&>().empty())
      emit(chunk({{"content", message["content"]}}, nullptr));
    if (message.contains("tool_calls") && message["tool_calls"].is_array() && !message["tool_calls"].empty()) {
      saw_tool_calls_ = true;
      emit(chunk({{"tool_calls", openai_tool_calls(message["tool_calls"], next_tool_index_)}}, nullptr));
    }
    if (doc.value("done", false)) {
      done_ = true;
      read_usage(doc);
      finish_reason_ = finish_reason_of(doc, saw_tool_calls_);
      emit_finish(finish_reason_);
      finish_ok();
    }
  }

  void read_usage(const json& doc) {
    if (doc.contains("prompt_eval_count") || doc.contains("eval_count")) {
      usage_.prompt_tokens = doc.value("prompt_eval_count", 0);
      usage_.completion_tokens = doc.value("eval_count", 0);
      usage_.known = true;
    }
  }

  LineSplitter lines_;
  bool done_ = false, saw_tool_calls_ = false;
  int next_tool_index_ = 0;
};

class OllamaProvider final : public Provider {
 public:
  OllamaProvider(UpstreamSpec spec, ProviderHost& host) : spec_(std::move(spec)), host_(host) {}

  // GET /api/tags lists the models pulled (servable at all); GET /api/ps those in memory (hot).
  bool poll_status(std::function<void(BackendStatus)> done) override {
    auto timeout = std::min(spec_.connect_timeout * 2, std::chrono::milliseconds(5000));
    HttpClient* http = &host_.http;
    std::string base = spec_.url;
    http_get(*http, base + "/api/tags", {}, timeout,
             [http, base, timeout, done = std::move(done)](int status, const std::string& body) mutable {
               BackendStatus st;
               json doc = json::parse(body, nullptr, false);
               if (status != 200 || !doc.is_object()) {
                 st.ready = false;
                 st.detail = status == 0 ? "unreachable" : "GET /api/tags: HTTP " + std::to_string(status);
                 return done(st);
               }
               st.available_known = true;
               add_names(doc, st.available_models);
               http_get(*http, base + "/api/ps", {}, timeout, [st, done](int status, const std::string& body) mutable {
                 json ps = json::parse(body, nullptr, false);
                 if (status == 200 && ps.is_object()) {
                   st.loaded_known = true;
                   add_names(ps, st.loaded_models);
                 }
                 done(st);
               });
             });
    return true;
  }

  // Ollama names carry a tag ("llama3.2:latest"); "llama3.2" means the same model.
  static void add_names(const json& doc, std::vector<std::string>& out) {
    for (const json& m : doc.value("models", json::array())) {
      std::string name = m.value("name", m.value("model", ""));
      out.push_back(name);
      auto tag = name.rfind(":latest");
      if (tag != std::string::npos && tag + 7 == name.size()) out.push_back(name.substr(0, tag));
    }
  }

  std::unique_ptr<ProviderCall> start(const ChatRequest& request, ResponseSink& sink) override {
    json body;
    try {
      body = map_request(json::parse(request.body), request.model, request.stream);
    } catch (const Invalid& invalid) {
      return refuse(sink, invalid.error);
    }
    Headers own;
    if (!spec_.api_key.empty()) own.emplace_back("Authorization", "Bearer " + spec_.api_key);
    auto http = upstream_post(spec_, "/api/chat", body.dump(-1, ' ', false, json::error_handler_t::replace),
                              request, own);
    return start_relay(host_.http, std::move(http), std::make_shared<Relay>(spec_, request, sink));
  }

  // Ollama's /api/embed ({model, input: text or texts} -> {embeddings: [[...]], prompt_eval_count}),
  // answered in OpenAI's shape.
  std::unique_ptr<ProviderCall> embed(const EmbeddingRequest& request, ResponseSink& sink) override {
    json asked = json::parse(request.body);  // checked by the core
    json input = asked["input"];
    bool text = input.is_string() || (input.is_array() && std::all_of(input.begin(), input.end(), [](const json& i) { return i.is_string(); }));
    if (!text)
      return refuse(sink, Error::invalid_request("This node's backend (Ollama) embeds text only, not token ids", "input", "unsupported_value"));
    json body = {{"model", request.model}, {"input", input}};
    if (asked.contains("dimensions")) body["dimensions"] = asked["dimensions"];
    Headers own;
    if (!spec_.api_key.empty()) own.emplace_back("Authorization", "Bearer " + spec_.api_key);
    return start_embeddings_call(host_.http, spec_, "/api/embed", body.dump(-1, ' ', false, json::error_handler_t::replace), request,
                                 own, read_ollama_embeddings, sink);
  }

 private:
  static std::optional<std::string> read_ollama_embeddings(std::string_view body, Usage& usage) {
    json doc = json::parse(body, nullptr, false);
    if (!doc.is_object() || !doc.contains("embeddings") || !doc["embeddings"].is_array()) return std::nullopt;
    json data = json::array();
    for (std::size_t i = 0; i < doc["embeddings"].size(); ++i) {
      if (!doc["embeddings"][i].is_array()) return std::nullopt;
      data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", doc["embeddings"][i]}});
    }
    usage.known = doc.contains("prompt_eval_count") && doc["prompt_eval_count"].is_number_integer();
    usage.prompt_tokens = usage.known ? doc["prompt_eval_count"].get<std::int64_t>() : 0;
    json out = {{"object", "list"}, {"data", data}, {"model", doc.contains("model") && doc["model"].is_string() ? doc["model"] : json("")},
                {"usage", {{"prompt_tokens", usage.prompt_tokens}, {"total_tokens", usage.prompt_tokens}}}};
    return out.dump(-1, ' ', false, json::error_handler_t::replace);
  }

  UpstreamSpec spec_;
  ProviderHost& host_;
};

std::unique_ptr<Provider> make_ollama_provider(const UpstreamSpec& spec, ProviderHost& host) {
  if (spec.url.empty())
    throw std::invalid_argument("url: the ollama provider needs Ollama's address, e.g. http://127.0.0.1:11434");
  if (spec.url.size() >= 3 && spec.url.compare(spec.url.size() - 3, 3, "/v1") == 0)
    throw std::invalid_argument("url: give Ollama's root address (http://host:11434), not its /v1 "
                                "OpenAI endpoint; for that one use provider \"openai\"");
  return std::make_unique<OllamaProvider>(spec, host);
}

// No options: any key in "options" is refused, naming it.
const ConfigSchema& ollama_options() {
  static const ConfigSchema none;
  return none;
}

}  // namespace
}  // namespace plexus

PLEXUS_PROVIDER(plexus::make_ollama_provider)
PLEXUS_PROVIDER_OPTIONS(plexus::ollama_options)
