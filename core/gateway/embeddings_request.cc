#include "gateway/embeddings_request.hpp"

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <cstring>

namespace plexus {

using nlohmann::json;

namespace {

Error bad(std::string message, std::string param, std::string code = "invalid_value") {
  return Error::invalid_request(std::move(message), std::move(param), std::move(code));
}

bool token_ids(const json& list) {
  if (!list.is_array() || list.empty()) return false;
  for (const auto& t : list)
    if (!t.is_number_integer() || t.get<std::int64_t>() < 0) return false;
  return true;
}

// The input's size in characters (strings) or tokens (ids), for the estimate before the node
// counts; nullopt when the input is not one of the accepted shapes.
std::optional<std::size_t> input_size(const json& input) {
  if (input.is_string()) return input.get_ref<const std::string&>().empty() ? std::nullopt : std::optional(input.get_ref<const std::string&>().size());
  if (token_ids(input)) return input.size() * 4;
  if (!input.is_array() || input.empty() || input.size() > 2048) return std::nullopt;
  std::size_t total = 0;
  for (const auto& item : input) {
    if (item.is_string() && !item.get_ref<const std::string&>().empty()) total += item.get_ref<const std::string&>().size();
    else if (token_ids(item)) total += item.size() * 4;
    else return std::nullopt;
  }
  return total;
}

std::string base64_floats(const json& embedding) {
  std::string raw(embedding.size() * 4, '\0');
  for (std::size_t i = 0; i < embedding.size(); ++i) {
    float f = embedding[i].is_number() ? embedding[i].get<float>() : 0.0f;
    std::memcpy(&raw[i * 4], &f, 4);  // x86-64 and aarch64 are little-endian, as OpenAI's format is
  }
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(raw.data()),
                          static_cast<int>(raw.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

}  // namespace

std::variant<ParsedChat, Error> parse_embeddings_request(std::string_view text) {
  json body = json::parse(text, nullptr, false);
  if (body.is_discarded() || !body.is_object()) return bad("The body is not a JSON object", "", "invalid_json");
  if (!body.contains("model") || !body["model"].is_string() || body["model"].get<std::string>().empty())
    return bad("model is required", "model", "missing_required_parameter");
  if (!body.contains("input")) return bad("input is required", "input", "missing_required_parameter");
  auto size = input_size(body["input"]);
  if (!size)
    return bad("input is a non-empty string, a list of up to 2048 non-empty strings, or token ids", "input");
  ParsedChat out;
  out.embeddings = true;
  out.model = body["model"];
  out.prompt_chars = *size;
  if (body.contains("encoding_format") && !body["encoding_format"].is_null()) {
    const json& f = body["encoding_format"];
    if (f != "float" && f != "base64") return bad("encoding_format is float or base64", "encoding_format");
    out.base64_embeddings = f == "base64";
  }
  if (body.contains("dimensions") && !body["dimensions"].is_null() &&
      (!body["dimensions"].is_number_integer() || body["dimensions"].get<std::int64_t>() < 1))
    return bad("dimensions is a positive integer", "dimensions");
  out.raw = std::make_shared<const std::string>(text);
  return out;
}

EmbeddingRequest to_upstream_embeddings(const ParsedChat& request, const std::string& upstream_model,
                                        const std::string& request_id) {
  json doc = json::parse(*request.raw);  // checked already
  doc["model"] = upstream_model;
  doc["encoding_format"] = "float";
  for (const char* router_field : {"provider", "models", "plugins"}) doc.erase(router_field);  // not the backend's business
  return {request_id, upstream_model, doc.dump(-1, ' ', false, json::error_handler_t::replace), {}};
}

json client_embeddings(std::string_view answer, const ParsedChat& request) {
  json doc = json::parse(answer, nullptr, false);
  if (!doc.is_object() || !doc.contains("data") || !doc["data"].is_array()) return nullptr;
  for (auto& item : doc["data"]) {
    if (!item.is_object() || !item.contains("embedding") || !item["embedding"].is_array()) return nullptr;
    if (request.base64_embeddings) item["embedding"] = base64_floats(item["embedding"]);
  }
  doc["object"] = "list";
  doc["model"] = request.model;
  return doc;
}

}  // namespace plexus
