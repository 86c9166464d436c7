// The web plugin: searches the web for the last user message and hands the results to the model
// as numbered sources, then marks the answer's citations of them as OpenAI url_citation
// annotations (README.md). The search runs on the loop's HTTP client while the request is paused:
// no loop ever waits for it.
#include <plexus/plugin_abi.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <ctime>
#include <memory>
#include <optional>

#include "citations.hpp"
#include "search_backend.hpp"

namespace plexus::web {
namespace {

using nlohmann::json;

constexpr const char* kDefaultPrompt =
    "A web search was conducted on {date}. Use the following web search results to answer the user's "
    "question. Cite each source you use by its number in square brackets, like [1].";
constexpr std::size_t kMaxSearchAnswer = 4u << 20;  // bytes of a search answer read at most

struct Options {
  BackendOptions backend;
  std::chrono::milliseconds timeout{3000};
  std::size_t max_results = 5;
  std::size_t max_results_limit = 10;
  bool always = false;
  std::string search_prompt;
  std::size_t max_query_chars = 400;
  std::string header;
};

// One request's search: its sources, and the scanner that follows the answer's citations.
struct RequestState {
  std::vector<Source> sources;
  std::optional<CitationScanner> scanner;
};

std::string today_utc() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char out[16];
  std::strftime(out, sizeof out, "%Y-%m-%d", &tm);
  return out;
}

// The last user message's text: its string, or its text parts joined.
std::string last_user_text(const json& messages) {
  for (auto m = messages.rbegin(); m != messages.rend(); ++m) {
    if (!m->is_object() || m->value("role", "") != "user" || !m->contains("content")) continue;
    const json& content = (*m)["content"];
    if (content.is_string()) return content.get<std::string>();
    std::string text;
    if (content.is_array())
      for (const auto& part : content)
        if (part.is_object() && part.value("type", "") == "text" && part.contains("text") && part["text"].is_string())
          text += (text.empty() ? "" : " ") + part["text"].get<std::string>();
    return text;
  }
  return "";
}

std::string cut_query(std::string text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  std::size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
}

// The system message the results go in, just before the last user message (so the conversation
// before it, and the backend's KV cache of it, stay as they were).
void inject(json& body, const std::string& prompt, const std::vector<Source>& sources) {
  std::string text = prompt;
  for (auto at = text.find("{date}"); at != std::string::npos; at = text.find("{date}")) text.replace(at, 6, today_utc());
  for (std::size_t i = 0; i < sources.size(); ++i) {
    text += "\n\n[" + std::to_string(i + 1) + "] " + sources[i].title + "\nURL: " + sources[i].url;
    if (!sources[i].content.empty()) text += "\n" + sources[i].content;
  }
  json& messages = body["messages"];
  auto last_user = messages.end();
  for (auto m = messages.begin(); m != messages.end(); ++m)
    if (m->is_object() && m->value("role", "") == "user") last_user = m;
  messages.insert(last_user, json{{"role", "system"}, {"content", text}});
}

// Reads one search answer, bounded.
class SearchReader final : public HttpResponseHandler {
 public:
  using Done = std::function<void(int status, std::string body, std::string error)>;
  explicit SearchReader(Done done) : done_(std::move(done)) {}
  void on_status(int status, const Headers&) override { status_ = status; }
  void on_data(std::string_view bytes) override {
    if (body_.size() + bytes.size() > kMaxSearchAnswer) {
      too_large_ = true;
      return;
    }
    body_.append(bytes);
  }
  void on_end(TransferError error, std::string_view detail) override {
    if (!done_) return;
    auto done = std::move(done_);
    if (too_large_) return done(status_, "", "answer larger than 4 MiB");
    if (error != TransferError::kNone) return done(status_, "", std::string(detail.empty() ? "transfer failed" : detail));
    done(status_, std::move(body_), "");
  }

 private:
  Done done_;
  int status_ = 0;
  std::string body_;
  bool too_large_ = false;
};

class WebPlugin final : public Plugin {
 public:
  WebPlugin(const PluginInit& init, Options options)
      : init_(init), options_(std::move(options)), backend_(make_backend(options_.backend)) {}

  unsigned hooks() const override { return kHookRequest | kHookChunk; }

  RequestStatus on_request(RequestContext& ctx) override {
    // The host says whether the request asks for this instance (its "plugins" entry, or the
    // ":online" model suffix): most do not, and their bodies are not even parsed.
    std::optional<std::size_t> entry = ctx.request_entry();
    if (!options_.always && !entry) return RequestStatus::kContinue;
    json body = json::parse(ctx.request_json());
    std::size_t max_results = options_.max_results;
    std::string prompt = options_.search_prompt;
    const json* list = body.contains("plugins") && body["plugins"].is_array() ? &body["plugins"] : nullptr;
    if (entry && list && *entry < list->size()) {
      const json& mine = (*list)[*entry];
      std::string at = "plugins[" + std::to_string(*entry) + "]";
      if (mine.contains("max_results")) {
        const json& n = mine["max_results"];
        if (!n.is_number_integer() || n.get<long long>() < 1 || n.get<long long>() > static_cast<long long>(options_.max_results_limit)) {
          ctx.reject(Error::invalid_request("'" + at + ".max_results' must be an integer from 1 to " +
                                                std::to_string(options_.max_results_limit),
                                            at + ".max_results"));
          return RequestStatus::kRespond;
        }
        max_results = n.get<std::size_t>();
      }
      if (mine.contains("search_prompt")) {
        if (!mine["search_prompt"].is_string()) {
          ctx.reject(Error::invalid_request("'" + at + ".search_prompt' must be a string", at + ".search_prompt"));
          return RequestStatus::kRespond;
        }
        prompt = mine["search_prompt"].get<std::string>();
      }
    }
    std::string query = cut_query(last_user_text(body["messages"]), options_.max_query_chars);
    if (query.empty()) {
      ctx.set_response_header(options_.header, "skipped; no user text to search for");
      return RequestStatus::kContinue;
    }
    auto state = std::make_shared<RequestState>();
    ctx.state() = state;
    search(ctx.pause(), std::move(body), query, max_results, prompt, state);
    return RequestStatus::kPending;
  }

  ChunkStatus on_chunk(ChunkContext& ctx) override {
    auto* state = static_cast<RequestState*>(ctx.state().get());
    if (!state || state->sources.empty() || ctx.end_of_stream()) return ChunkStatus::kUnchanged;
    json chunk = json::parse(ctx.chunk(), nullptr, false);
    if (!chunk.is_object() || !chunk.contains("choices") || !chunk["choices"].is_array() || chunk["choices"].empty())
      return ChunkStatus::kUnchanged;
    json& choice = chunk["choices"][0];
    json* holder = ctx.whole() ? (choice.contains("message") ? &choice["message"] : nullptr)
                               : (choice.contains("delta") ? &choice["delta"] : nullptr);
    if (!holder || !holder->is_object() || !holder->contains("content") || !(*holder)["content"].is_string())
      return ChunkStatus::kUnchanged;
    if (!state->scanner) state->scanner.emplace(state->sources);
    auto citations = state->scanner->feed((*holder)["content"].get_ref<const std::string&>());
    if (citations.empty()) return ChunkStatus::kUnchanged;
    json& annotations = (*holder)["annotations"];
    if (!annotations.is_array()) annotations = json::array();
    for (const auto& c : citations) annotations.push_back(annotation(state->sources[c.source], c));
    ctx.set_chunk(chunk.dump(-1, ' ', false, json::error_handler_t::replace));
    return ChunkStatus::kModified;
  }

 private:
  void search(std::shared_ptr<PendingRequest> pending, json body, const std::string& query, std::size_t max_results,
              const std::string& prompt, std::shared_ptr<RequestState> state) {
    HttpRequest request = backend_->request(query);
    request.connect_timeout = request.first_byte_timeout = request.idle_timeout = options_.timeout;
    std::weak_ptr<PendingRequest> weak = pending;
    auto transfer = std::make_shared<TransferId>(0);
    auto timer = std::make_shared<TimerId>(0);
    // Exactly one of: the answer, the timeout, the request ending while it waits.
    auto finish = std::make_shared<std::function<void(std::variant<std::vector<Source>, std::string>)>>();
    *finish = [this, weak, body = std::move(body), prompt, state, transfer, timer](auto outcome) mutable {
      if (*timer) init_.timers->cancel(*timer);
      *timer = 0;
      *transfer = 0;
      auto p = weak.lock();
      if (!p || !p->active()) return;
      if (auto* sources = std::get_if<std::vector<Source>>(&outcome); sources && !sources->empty()) {
        state->sources = std::move(*sources);
        inject(body, prompt, state->sources);
        p->set_request_json(body.dump(-1, ' ', false, json::error_handler_t::replace));
        p->set_response_header(options_.header, "ok; results=" + std::to_string(state->sources.size()));
      } else {
        // The request goes on without results: a failed search is never the client's 5xx.
        std::string why = sources ? "none; the search found nothing" : "failed; " + std::get<std::string>(outcome);
        if (!sources) init_.log(LogLevel::kWarn, "search failed: " + std::get<std::string>(outcome));
        p->set_request_json(body.dump(-1, ' ', false, json::error_handler_t::replace));
        p->set_response_header(options_.header, why);
      }
      p->resume();
    };
    pending->on_cancel([this, transfer, timer] {
      if (*transfer) init_.http->abort(*transfer);
      if (*timer) init_.timers->cancel(*timer);
      *transfer = *timer = 0;
    });
    *timer = init_.timers->after(options_.timeout, [this, transfer, timer, finish] {
      *timer = 0;
      if (*transfer) init_.http->abort(*transfer);
      (*finish)(std::string("timed out after " + std::to_string(options_.timeout.count()) + " ms"));
    });
    *transfer = init_.http->start(std::move(request), std::make_shared<SearchReader>(
        [this, max_results, finish](int status, std::string answer, std::string error) {
          if (!error.empty()) return (*finish)(std::move(error));
          (*finish)(backend_->parse(status, answer, max_results));
        }));
  }

  PluginInit init_;
  Options options_;
  std::unique_ptr<SearchBackend> backend_;
};

Options options_from(const json& c) {
  Options o;
  o.backend.kind = c["kind"].get<std::string>();
  o.backend.url = c["search_url"].get<std::string>();
  o.backend.language = c["language"].get<std::string>();
  o.backend.categories = c["categories"].get<std::string>();
  o.backend.max_snippet_chars = c["max_snippet_chars"].get<std::size_t>();
  o.timeout = std::chrono::milliseconds(c["timeout_ms"].get<long long>());
  o.max_results = c["max_results"].get<std::size_t>();
  o.max_results_limit = c["max_results_limit"].get<std::size_t>();
  o.always = c["always"].get<bool>();
  o.search_prompt = c["search_prompt"].get<std::string>();
  o.max_query_chars = c["max_query_chars"].get<std::size_t>();
  o.header = c["header"].get<std::string>();
  if (o.backend.url.rfind("http://", 0) != 0 && o.backend.url.rfind("https://", 0) != 0)
    throw std::invalid_argument("search_url: expected an http(s) URL");
  if (o.max_results > o.max_results_limit) throw std::invalid_argument("max_results: above max_results_limit");
  return o;
}

std::unique_ptr<Plugin> create(const PluginInit& init) {
  return std::make_unique<WebPlugin>(init, options_from(json::parse(init.config_json)));
}

const PluginDescriptor& describe() {
  static const PluginDescriptor d{
      "web",
      "1.0.0",
      "Web search with citations: results injected as numbered sources, citations annotated",
      {
          field::string("search_url", "", "The search backend's base URL (a SearxNG instance)").required(),
          field::string("kind", "searxng", "The search backend's API").one_of({"searxng"}),
          field::integer("timeout_ms", 3000, "Longest wait for the search; then the request goes on without it").range(50, 60000),
          field::integer("max_results", 5, "Results injected when the request does not say").range(1, 50),
          field::integer("max_results_limit", 10, "Most results a request may ask for").range(1, 50),
          field::boolean("always", false, "Search for every request, not only those that ask"),
          field::string("search_prompt", kDefaultPrompt, "Text before the results; {date} becomes today's date (UTC)"),
          field::integer("max_snippet_chars", 500, "Longest snippet per result, in bytes").range(0, 100000),
          field::integer("max_query_chars", 400, "Longest query sent, in bytes of the last user message").range(1, 10000),
          field::string("language", "", "SearxNG's language parameter (empty: the instance's default)"),
          field::string("categories", "", "SearxNG's categories parameter (empty: general)"),
          field::string("header", "x-plexus-web-search", "Response header saying how the search went"),
      }};
  return d;
}

}  // namespace
}  // namespace plexus::web

PLEXUS_PLUGIN(plexus::web::describe, plexus::web::create)
