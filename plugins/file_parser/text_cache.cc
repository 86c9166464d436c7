#include "text_cache.hpp"

#include <openssl/evp.h>

namespace plexus::file_parser {

std::shared_ptr<const PdfText> TextCache::find(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  order_.splice(order_.begin(), order_, it->second);
  return it->second->second;
}

void TextCache::put(const std::string& key, std::shared_ptr<const PdfText> text) {
  if (max_entries_ == 0 || text->text.size() > max_bytes_) return;
  std::lock_guard lock(mu_);
  if (index_.count(key)) return;
  bytes_ += text->text.size();
  order_.emplace_front(key, std::move(text));
  index_[key] = order_.begin();
  while (order_.size() > max_entries_ || bytes_ > max_bytes_) {
    bytes_ -= order_.back().second->text.size();
    index_.erase(order_.back().first);
    order_.pop_back();
  }
}

std::size_t TextCache::size() const {
  std::lock_guard lock(mu_);
  return order_.size();
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

bool decode_base64(std::string_view text, std::string& out) {
  if (text.size() % 4 != 0) return false;
  out.resize(text.size() / 4 * 3);
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return false;
  // EVP_DecodeBlock counts the padding as zero bytes: take them off again.
  std::size_t padding = 0;
  for (std::size_t i = text.size(); i > 0 && text[i - 1] == '=' && padding < 2; --i) ++padding;
  out.resize(static_cast<std::size_t>(n) - padding);
  return true;
}

}  // namespace plexus::file_parser
