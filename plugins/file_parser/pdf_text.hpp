#pragma once
// PDF to text with poppler-cpp, page by page. Pure and thread-safe (each call has its own
// document), so the plugin runs it on the worker pool, never on an event loop.
#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

namespace plexus::file_parser {

struct PdfLimits {
  std::size_t max_pages = 200;
};

struct PdfText {
  std::string text;  // each page's text after a "--- page N ---" line
  std::size_t pages = 0;
};

struct PdfError {
  enum class Kind { kNotPdf, kCorrupt, kEncrypted, kTooManyPages } kind;
  std::string message;  // what the client reads ("the PDF is encrypted")
};

std::variant<PdfText, PdfError> extract_pdf_text(std::string_view bytes, const PdfLimits& limits);

}  // namespace plexus::file_parser
