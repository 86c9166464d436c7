#pragma once
// Extracted text by content hash (SHA-256 of the file), so a PDF sent again (the same document in every turn of a
// conversation) is parsed once. Bounded by entries and by bytes of text; least recently used
// goes first. Shared by every loop's instance and the workers, hence the mutex (held for a
// lookup or an insert, never while parsing).
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "pdf_text.hpp"

namespace plexus::file_parser {

class TextCache {
 public:
  TextCache(std::size_t max_entries, std::size_t max_bytes) : max_entries_(max_entries), max_bytes_(max_bytes) {}

  std::shared_ptr<const PdfText> find(const std::string& key);
  void put(const std::string& key, std::shared_ptr<const PdfText> text);
  std::size_t size() const;

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const PdfText>>;
  std::size_t max_entries_, max_bytes_;
  mutable std::mutex mu_;
  std::list<Entry> order_;  // most recent first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  std::size_t bytes_ = 0;
};

// The SHA-256 of `bytes`, in hex (OpenSSL's).
std::string sha256_hex(std::string_view bytes);

// Standard base64 (RFC 4648, padded) to bytes with OpenSSL's decoder; false when it is not base64.
bool decode_base64(std::string_view text, std::string& out);

}  // namespace plexus::file_parser
