// The file-parser plugin: PDFs sent as OpenAI file content parts become text, with page markers,
// before the request reaches a node (README.md). Everything heavy (the JSON of a body holding
// megabytes of base64, the decoding, poppler) runs on the worker pool while the request waits
// paused; the event loop only hands the body over and takes the new one back.
#include <plexus/plugin_abi.hpp>

#include <nlohmann/json.hpp>

#include <memory>
#include <mutex>

#include "file_parts.hpp"

namespace plexus::file_parser {
namespace {

using nlohmann::json;

// One cache for every loop's instance: the same PDF is parsed once, whichever loop sees it.
std::shared_ptr<TextCache> shared_cache(std::size_t entries, std::size_t bytes) {
  static std::mutex mu;
  static std::weak_ptr<TextCache> existing;
  std::lock_guard lock(mu);
  auto cache = existing.lock();
  if (!cache) existing = cache = std::make_shared<TextCache>(entries, bytes);
  return cache;
}

// Whether the body may hold a file content part: somewhere "type", a colon and "file", with only
// whitespace between (JSON allows it). Bodies without one pass untouched and unparsed; a "file"
// key or word elsewhere does not cost a worker job.
bool may_carry_file_part(const std::string& body) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  for (auto at = body.find("\"file\""); at != std::string::npos; at = body.find("\"file\"", at + 1)) {
    std::size_t i = at;
    while (i > 0 && is_space(body[i - 1])) --i;
    if (i == 0 || body[i - 1] != ':') continue;
    --i;
    while (i > 0 && is_space(body[i - 1])) --i;
    if (i >= 6 && body.compare(i - 6, 6, "\"type\"") == 0) return true;
  }
  return false;
}

class FileParserPlugin final : public Plugin {
 public:
  FileParserPlugin(const PluginInit& init, Limits limits, std::shared_ptr<TextCache> cache)
      : init_(init), limits_(limits), cache_(std::move(cache)) {}

  unsigned hooks() const override { return kHookRequest; }

  RequestStatus on_request(RequestContext& ctx) override {
    auto body = std::make_shared<std::string>(ctx.request_json());
    if (!may_carry_file_part(*body)) return RequestStatus::kContinue;
    auto pending = ctx.pause();
    std::weak_ptr<PendingRequest> weak = pending;
    // Until the work says otherwise, the outcome is a failure: a job that throws must not let
    // the file through unread.
    auto result = std::make_shared<std::variant<Rewritten, Error>>(
        Error{500, "The PDF could not be processed", "server_error", "", "file_parser_error"});
    bool queued = init_.workers->submit(
        [body, result, limits = limits_, cache = cache_, name = init_.name, log = init_.log] {
          try {
            *result = replace_file_parts(*body, limits, *cache, name);
          } catch (const std::exception& e) {
            log(LogLevel::kError, std::string("parsing failed: ") + e.what());
          }
        },
        [weak, result, header = header_] {
          auto p = weak.lock();
          if (!p || !p->active()) return;  // the client left, or the wait timed out
          if (auto* error = std::get_if<Error>(result.get())) return p->reject(*error);
          auto& done = std::get<Rewritten>(*result);
          if (!done.body.empty()) {
            p->set_request_json(std::move(done.body));
            p->set_response_header(header, "files=" + std::to_string(done.files) + "; pages=" + std::to_string(done.pages) +
                                               "; cached=" + std::to_string(done.cached));
          }
          p->resume();
        });
    if (!queued) {
      pending->set_response_header("retry-after", "1");
      pending->reject({503, "Too many files are being parsed right now; retry shortly", "server_error", "", "workers_busy"});
    }
    return RequestStatus::kPending;
  }

 private:
  PluginInit init_;
  Limits limits_;
  std::shared_ptr<TextCache> cache_;
  std::string header_ = "x-plexus-file-parser";
};

std::unique_ptr<Plugin> create(const PluginInit& init) {
  json c = json::parse(init.config_json);
  Limits limits;
  limits.max_file_bytes = c["max_file_bytes"].get<std::size_t>();
  limits.max_files = c["max_files"].get<std::size_t>();
  limits.pdf.max_pages = c["max_pages"].get<std::size_t>();
  auto cache = shared_cache(c["cache_entries"].get<std::size_t>(), c["cache_mb"].get<std::size_t>() << 20);
  return std::make_unique<FileParserPlugin>(init, limits, std::move(cache));
}

const PluginDescriptor& describe() {
  static const PluginDescriptor d{
      "file-parser",
      "1.0.0",
      "PDF file parts become text with page markers (poppler), on the worker pool",
      {
          field::integer("max_file_bytes", 20 << 20, "Largest PDF accepted, decoded (the body limit applies first)")
              .range(1024, 1ll << 30),
          field::integer("max_pages", 200, "Most pages in one PDF").range(1, 100000),
          field::integer("max_files", 8, "Most files in one request").range(1, 256),
          field::integer("cache_entries", 256, "Extracted documents remembered by content hash (0: none)").range(0, 1000000),
          field::integer("cache_mb", 64, "Most text the cache holds, in MiB").range(1, 65536),
      }};
  return d;
}

}  // namespace
}  // namespace plexus::file_parser

PLEXUS_PLUGIN(plexus::file_parser::describe, plexus::file_parser::create)
