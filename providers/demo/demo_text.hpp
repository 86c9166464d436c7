#pragma once
// The demo node's text: deterministic for a given prompt and seed, honouring max_tokens and stop
// sequences exactly as a real model server does (stop text never appears in the output).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace plexus::demo {

struct Generation {
  std::vector<std::string> tokens;  // concatenated, they are the completion
  std::string finish_reason;        // "stop" or "length"
};

// Tokens a simple word/punctuation tokenizer finds in `text`; the demo's usage counts use it.
std::int64_t count_tokens(std::string_view text);

Generation generate(std::string_view prompt, std::optional<std::int64_t> seed,
                    std::optional<std::int64_t> max_tokens, const std::vector<std::string>& stop,
                    std::int64_t natural_length_max);

}  // namespace plexus::demo
