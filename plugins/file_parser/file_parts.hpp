#pragma once
// The request-side work of the file-parser plugin, all of it off the event loop: find the file
// parts of a chat request ({"type": "file", "file": {"filename", "file_data": "data:...;base64,..."}}),
// turn each PDF into text with page markers (through the cache), and write the request back with
// text parts in their place. A pure function of the body, run on the worker pool.
#include <memory>
#include <string>
#include <variant>

#include <plexus/error.hpp>

#include "pdf_text.hpp"
#include "text_cache.hpp"

namespace plexus::file_parser {

struct Limits {
  std::size_t max_file_bytes = 20u << 20;  // decoded
  std::size_t max_files = 8;
  PdfLimits pdf;
};

struct Rewritten {
  std::string body;  // the request with every file part replaced; empty: it had none
  std::size_t files = 0, pages = 0, cached = 0;
};

// Errors name the part ("messages[2].content[1]") as the param, with status 400.
std::variant<Rewritten, Error> replace_file_parts(const std::string& body, const Limits& limits, TextCache& cache,
                                                  const std::string& plugin_name);

}  // namespace plexus::file_parser
