#include "demo/demo_text.hpp"

#include <array>
#include <cctype>

namespace plexus::demo {
namespace {

constexpr std::array<std::string_view, 48> kWords = {
    "the",     "router",   "streams", "tokens",  "from",    "a",        "node",    "that",
    "answers", "quickly",  "and",     "every",   "request", "finds",    "its",     "way",
    "through", "plugins",  "to",      "GPU",     "nodes",   "across",   "network", "with",
    "latency", "measured", "in",      "time",    "while",   "prices",   "stay",    "fair",
    "model",   "weights",  "warm",    "memory",  "decides", "which",    "one",     "serves",
    "clients", "see",      "only",    "OpenAI",  "shaped",  "chunks",   "arrive",  "steadily"};

// splitmix64: tiny, fast, and the same on every platform.
std::uint64_t next(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

}  // namespace

std::int64_t count_tokens(std::string_view text) {
  std::int64_t n = 0;
  bool in_word = false;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c >= 0x80) {
      if (!in_word) ++n;
      in_word = true;
    } else {
      in_word = false;
      if (!std::isspace(c)) ++n;  // punctuation counts as a token of its own
    }
  }
  return n;
}

Generation generate(std::string_view prompt, std::optional<std::int64_t> seed,
                    std::optional<std::int64_t> max_tokens, const std::vector<std::string>& stop,
                    std::int64_t natural_length_max) {
  std::uint64_t state = seed ? static_cast<std::uint64_t>(*seed) * 0x2545F4914F6CDD1DULL + 1
                             : fnv1a(prompt);
  std::int64_t natural = 8 + static_cast<std::int64_t>(next(state) % static_cast<std::uint64_t>(
                                                                 std::max<std::int64_t>(natural_length_max - 7, 1)));
  std::int64_t limit = max_tokens ? std::min(*max_tokens, natural) : natural;

  Generation g;
  g.finish_reason = max_tokens && *max_tokens < natural ? "length" : "stop";
  std::string text;
  bool sentence_start = true;
  std::int64_t words_in_sentence = 0;
  for (std::int64_t i = 0; i < limit; ++i) {
    std::string token;
    bool end_sentence = words_in_sentence >= 4 && next(state) % 6 == 0;
    if (end_sentence || i + 1 == natural) {
      token = ".";
      sentence_start = true;
      words_in_sentence = 0;
    } else {
      std::string word(kWords[next(state) % kWords.size()]);
      if (sentence_start) word[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(word[0])));
      token = (text.empty() ? "" : " ") + word;
      sentence_start = false;
      ++words_in_sentence;
    }
    // A stop sequence may span tokens: look for it in the text it would complete.
    std::string candidate = text + token;
    std::size_t cut = std::string::npos;
    for (const auto& s : stop) {
      std::size_t from = text.size() >= s.size() ? text.size() - s.size() + 1 : 0;
      std::size_t at = candidate.find(s, from);
      if (at != std::string::npos && at < cut) cut = at;
    }
    if (cut != std::string::npos) {
      std::string_view kept = std::string_view(candidate).substr(text.size());
      if (cut >= text.size()) {
        kept = kept.substr(0, cut - text.size());
        if (!kept.empty()) g.tokens.emplace_back(kept);
      } else {
        // The match began in earlier tokens: trim them back to where it started.
        std::size_t total = 0;
        std::vector<std::string> trimmed;
        for (auto& t : g.tokens) {
          if (total + t.size() <= cut) {
            trimmed.push_back(t);
          } else if (total < cut) {
            trimmed.push_back(t.substr(0, cut - total));
          }
          total += t.size();
        }
        g.tokens = std::move(trimmed);
      }
      g.finish_reason = "stop";
      return g;
    }
    text = std::move(candidate);
    g.tokens.push_back(std::move(token));
  }
  return g;
}

}  // namespace plexus::demo
