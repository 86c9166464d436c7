#include "file_parts.hpp"

#include <nlohmann/json.hpp>

namespace plexus::file_parser {
namespace {

using nlohmann::json;

Error invalid(const std::string& param, const std::string& what, const char* code = "invalid_file") {
  return Error::invalid_request("'" + param + "': " + what, param, code);
}

// A string field, or "" when absent or of another type (the body is the client's: any shape).
std::string string_field(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

// The per-request options OpenRouter's clients send: {"id": "file-parser", "pdf": {"engine": ...}}.
std::optional<Error> check_options(const json& doc, const std::string& plugin_name) {
  if (!doc.contains("plugins") || !doc["plugins"].is_array()) return std::nullopt;
  const json& list = doc["plugins"];
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (!list[i].is_object()) continue;
    std::string id = string_field(list[i], "id");
    if (id != "file-parser" && id != plugin_name) continue;
    if (!list[i].contains("pdf")) continue;
    std::string at = "plugins[" + std::to_string(i) + "].pdf.engine";
    const json& pdf = list[i]["pdf"];
    if (!pdf.is_object() || (pdf.contains("engine") && pdf["engine"] != "pdf-text"))
      return Error::invalid_request("'" + at + "': this router extracts PDF text itself; the only engine is \"pdf-text\"", at,
                                    "unsupported_engine");
  }
  return std::nullopt;
}

// A filename as an attribute value: it must not end the tag, or the block, it names.
std::string attribute(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '"': out += "&quot;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '\n': case '\r': out += ' '; break;
      default: out += c;
    }
  }
  return out;
}

// The text that takes a file part's place.
std::string as_text(const std::string& filename, const std::string& text, std::size_t pages) {
  return "<file name=\"" + attribute(filename) + "\" pages=\"" + std::to_string(pages) + "\">\n" + text + "</file>";
}

}  // namespace

std::variant<Rewritten, Error> replace_file_parts(const std::string& body, const Limits& limits, TextCache& cache,
                                                  const std::string& plugin_name) {
  json doc = json::parse(body, nullptr, false);
  if (!doc.is_object() || !doc.contains("messages") || !doc["messages"].is_array()) return Rewritten{};
  if (auto error = check_options(doc, plugin_name)) return *error;
  Rewritten out;
  json& messages = doc["messages"];
  for (std::size_t m = 0; m < messages.size(); ++m) {
    // Looked up, not indexed: operator[] would throw on a message that is no object, and add a
    // "content" to one without it.
    json& message = messages[m];
    if (!message.is_object()) continue;
    auto found = message.find("content");
    if (found == message.end() || !found->is_array()) continue;
    json& content = *found;
    for (std::size_t p = 0; p < content.size(); ++p) {
      json& part = content[p];
      if (!part.is_object() || string_field(part, "type") != "file") continue;
      std::string param = "messages[" + std::to_string(m) + "].content[" + std::to_string(p) + "]";
      if (++out.files > limits.max_files)
        return invalid(param, "a request may carry at most " + std::to_string(limits.max_files) + " files", "too_many_files");
      const json& file = part.contains("file") ? part["file"] : json();
      if (!file.is_object()) return invalid(param + ".file", "expected an object with file_data");
      if (!file.contains("file_data")) {
        if (file.contains("file_id"))
          return invalid(param + ".file.file_id", "uploaded files are not supported; send the file inline as file_data", "unsupported_file");
        return invalid(param + ".file.file_data", "required: a data URL (data:application/pdf;base64,...)");
      }
      if (!file["file_data"].is_string()) return invalid(param + ".file.file_data", "expected a data URL string");
      std::string_view data = file["file_data"].get_ref<const std::string&>();
      auto comma = data.find(',');
      std::string_view header = data.substr(0, comma);  // "data:application/pdf;base64"
      if (comma == std::string_view::npos || header.substr(0, 5) != "data:" || header.size() < 12 ||
          header.substr(header.size() - 7) != ";base64")
        return invalid(param + ".file.file_data", "expected a base64 data URL (data:application/pdf;base64,...)");
      std::string_view encoded = data.substr(comma + 1);
      if (encoded.size() / 4 * 3 > limits.max_file_bytes + 2)
        return invalid(param, "the file is larger than this router's limit of " + std::to_string(limits.max_file_bytes) + " bytes",
                       "file_too_large");
      std::string bytes;
      if (!decode_base64(encoded, bytes)) return invalid(param + ".file.file_data", "the data is not valid base64");
      if (bytes.size() > limits.max_file_bytes)
        return invalid(param, "the file is larger than this router's limit of " + std::to_string(limits.max_file_bytes) + " bytes",
                       "file_too_large");
      std::string filename = string_field(file, "filename");
      if (filename.empty()) filename = "document.pdf";
      std::string key = sha256_hex(bytes);
      std::shared_ptr<const PdfText> pdf = cache.find(key);
      if (pdf) {
        ++out.cached;
        if (pdf->pages > limits.pdf.max_pages)  // cached under a larger limit (another instance)
          return invalid(param, "the PDF has " + std::to_string(pdf->pages) + " pages; this router reads at most " +
                                    std::to_string(limits.pdf.max_pages));
      } else {
        auto extracted = extract_pdf_text(bytes, limits.pdf);
        if (auto* error = std::get_if<PdfError>(&extracted)) return invalid(param, error->message);
        pdf = std::make_shared<const PdfText>(std::move(std::get<PdfText>(extracted)));
        cache.put(key, pdf);
      }
      out.pages += pdf->pages;
      part = json{{"type", "text"}, {"text", as_text(filename, pdf->text, pdf->pages)}};
    }
  }
  if (out.files == 0) return Rewritten{};
  out.body = doc.dump(-1, ' ', false, json::error_handler_t::replace);
  return out;
}

}  // namespace plexus::file_parser
