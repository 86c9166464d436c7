#include "common/json_text.hpp"

namespace plexus {

static_assert(kJsonPadding == simdjson::SIMDJSON_PADDING, "padded_text.hpp keeps what simdjson reads past the end");
namespace {

constexpr std::size_t kThreadParserMax = 1u << 20;

simdjson::dom::parser& thread_parser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

}  // namespace

JsonText::JsonText(std::string_view text, std::size_t readable_after) {
  simdjson::dom::parser* parser = &thread_parser();
  if (text.size() > kThreadParserMax) {
    own_ = std::make_unique<simdjson::dom::parser>();
    parser = own_.get();
  }
  error_ = parser->parse(text.data(), text.size(), readable_after < kPadding).get(root_);
}

std::optional<std::size_t> usage_object_end(std::string& text) {
  thread_local simdjson::ondemand::parser parser;
  text.reserve(text.size() + kJsonPadding);
  simdjson::ondemand::document doc;
  if (parser.iterate(text.data(), text.size(), text.capacity()).get(doc)) return std::nullopt;
  simdjson::ondemand::object top;
  if (doc.get_object().get(top)) return std::nullopt;
  std::string_view usage;
  int found = 0;
  for (auto field : top) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return std::nullopt;
    if (key != "usage") continue;  // the iteration skips the value
    simdjson::ondemand::object object;
    if (field.value().get_object().get(object) || object.raw_json().get(usage)) return std::nullopt;
    ++found;
  }
  // The raw text may run on to the next token: what follows the closing brace is blank.
  while (!usage.empty() && (usage.back() == ' ' || usage.back() == '\t' || usage.back() == '\n' || usage.back() == '\r'))
    usage.remove_suffix(1);
  if (found != 1 || usage.size() < 2 || usage.back() != '}') return std::nullopt;
  // A backend that prices its own answers may send a cost already: a document replaces it.
  if (usage.find("\"cost\"") != std::string_view::npos) return std::nullopt;
  return static_cast<std::size_t>(usage.data() - text.data()) + usage.size() - 1;
}

void insert_member(std::string& text, std::size_t end, std::string_view name, std::string_view value_json) {
  std::size_t before = end;
  while (before > 0 && (text[before - 1] == ' ' || text[before - 1] == '\t' || text[before - 1] == '\n' || text[before - 1] == '\r'))
    --before;
  std::string member;
  member.reserve(name.size() + value_json.size() + 4);
  if (before > 0 && text[before - 1] != '{') member += ',';
  member.append("\"").append(name).append("\":").append(value_json);
  text.insert(end, member);
}

}  // namespace plexus
