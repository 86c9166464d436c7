#include "common/json_text.hpp"

namespace plexus {
namespace {

constexpr std::size_t kThreadParserMax = 1u << 20;

simdjson::dom::parser& thread_parser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

}  // namespace

JsonText::JsonText(std::string_view text) {
  simdjson::dom::parser* parser = &thread_parser();
  if (text.size() > kThreadParserMax) {
    own_ = std::make_unique<simdjson::dom::parser>();
    parser = own_.get();
  }
  error_ = parser->parse(text.data(), text.size()).get(root_);
}

}  // namespace plexus
