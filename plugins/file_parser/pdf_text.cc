#include "pdf_text.hpp"

#include <poppler/cpp/poppler-document.h>
#include <poppler/cpp/poppler-global.h>
#include <poppler/cpp/poppler-page.h>

#include <memory>
#include <mutex>

namespace plexus::file_parser {
namespace {

// Poppler reports every damaged byte on stderr by default: the router's log is no place for
// it (and corrupt uploads are the client's business, answered with a 400).
void quiet(const std::string&, void*) {}

}  // namespace

std::variant<PdfText, PdfError> extract_pdf_text(std::string_view bytes, const PdfLimits& limits) {
  static std::once_flag silenced;
  std::call_once(silenced, [] { poppler::set_debug_error_function(quiet, nullptr); });
  // The header may sit anywhere in the first KiB (as readers accept); without it, it is no PDF.
  if (bytes.substr(0, 1024).find("%PDF-") == std::string_view::npos)
    return PdfError{PdfError::Kind::kNotPdf, "the file is not a PDF (no %PDF- header)"};
  if (bytes.size() > static_cast<std::size_t>(INT32_MAX)) return PdfError{PdfError::Kind::kCorrupt, "the file is too large"};
  std::unique_ptr<poppler::document> doc(
      poppler::document::load_from_raw_data(bytes.data(), static_cast<int>(bytes.size())));
  if (!doc) return PdfError{PdfError::Kind::kCorrupt, "the PDF is damaged and cannot be read"};
  if (doc->is_locked()) return PdfError{PdfError::Kind::kEncrypted, "the PDF is encrypted (password protected)"};
  int pages = doc->pages();
  if (pages < 0) return PdfError{PdfError::Kind::kCorrupt, "the PDF is damaged and cannot be read"};
  if (static_cast<std::size_t>(pages) > limits.max_pages)
    return PdfError{PdfError::Kind::kTooManyPages, "the PDF has " + std::to_string(pages) + " pages; this router reads at most " +
                                                       std::to_string(limits.max_pages)};
  PdfText out;
  out.pages = static_cast<std::size_t>(pages);
  for (int i = 0; i < pages; ++i) {
    std::unique_ptr<poppler::page> page(doc->create_page(i));
    out.text += "--- page " + std::to_string(i + 1) + " ---\n";
    if (!page) continue;
    // Reading order without the physical layout's padding: what a model reads best.
    poppler::byte_array utf8 = page->text(poppler::rectf(), poppler::page::non_raw_non_physical_layout).to_utf8();
    out.text.append(utf8.begin(), utf8.end());
    // Poppler ends each page with a form feed and blank lines: one newline is enough.
    while (!out.text.empty() && (out.text.back() == '\n' || out.text.back() == '\f' || out.text.back() == ' '))
      out.text.pop_back();
    out.text += '\n';
  }
  return out;
}

}  // namespace plexus::file_parser
