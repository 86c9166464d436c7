#pragma once
// Reading JSON text without building a document: simdjson, with the calling thread's parser
// (its buffers kept from one text to the next). The hot paths read this way: request
// validation, upstream chunks and answers, what Lua hooks receive.
//
// One parser per thread is safe under one rule: a JsonText is valid until the thread's next
// parse, so read what you need from it before calling anything that may parse in turn (a sink,
// a plugin hook).
#include <simdjson.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/padded_text.hpp"

namespace plexus {

class JsonText {
 public:
  // `readable_after`: how many bytes past the end of `text` may be read (a std::string's spare
  // capacity). With kPadding of them, simdjson reads the text where it is; without, it copies it.
  explicit JsonText(std::string_view text, std::size_t readable_after = 0);

  static constexpr std::size_t kPadding = kJsonPadding;
  simdjson::error_code error() const { return error_; }
  simdjson::dom::element root() const { return root_; }  // when error() is SUCCESS

  static constexpr std::size_t kMaxDepth = simdjson::DEFAULT_MAX_DEPTH;

 private:
  std::unique_ptr<simdjson::dom::parser> own_;  // a text over 1 MiB: the thread's stays small
  simdjson::error_code error_ = simdjson::UNINITIALIZED;
  simdjson::dom::element root_;
};

// Where a member can be added to the top-level "usage" object of a JSON object text without
// building a document (a whole answer gets its cost this way): the offset of that object's
// closing brace. Nullopt when there is not exactly one "usage" member holding an object, or it
// may hold a "cost" already.
std::optional<std::size_t> usage_object_end(std::string& text);  // reserves simdjson's padding
// Inserts `"name":value_json` before the closing brace at `end` (a comma first if needed).
void insert_member(std::string& text, std::size_t end, std::string_view name, std::string_view value_json);

}  // namespace plexus
