#include "receipts/jws.hpp"

#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <cstdio>
#include <stdexcept>

namespace plexus::receipts {

std::string base64url(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

std::optional<std::string> from_base64url(std::string_view text) {
  std::string b64(text);
  for (char& c : b64) {
    if (c == '-') c = '+';
    else if (c == '_') c = '/';
    else if (c == '+' || c == '/' || c == '=') return std::nullopt;  // not the URL alphabet
  }
  if (b64.size() % 4 == 1) return std::nullopt;
  std::size_t padding = (4 - b64.size() % 4) % 4;
  b64.append(padding, '=');
  std::string out(b64.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(b64.data()),
                          static_cast<int>(b64.size()));
  if (n < 0) return std::nullopt;
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

std::string sha256_base64url(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
  return base64url(std::string_view(reinterpret_cast<const char*>(digest), length));
}

SigningKey SigningKey::load_or_create(const std::string& path) {
  SigningKey k;
  if (FILE* f = std::fopen(path.c_str(), "r")) {
    k.key_ = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    if (!k.key_ || EVP_PKEY_get_id(k.key_) != EVP_PKEY_ED25519)
      throw std::runtime_error(path + ": not an Ed25519 private key in PEM");
  } else {
    k.key_ = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    if (!k.key_) throw std::runtime_error(path + ": could not make an Ed25519 key");
    // Readable by the router's user only: the key signs every receipt.
    mode_t old = umask(077);
    FILE* out = std::fopen(path.c_str(), "w");
    umask(old);
    if (!out) throw std::runtime_error(path + ": cannot write the receipt key");
    bool ok = PEM_write_PrivateKey(out, k.key_, nullptr, nullptr, 0, nullptr, nullptr) == 1;
    ok = std::fclose(out) == 0 && ok;
    if (!ok) throw std::runtime_error(path + ": cannot write the receipt key");
    chmod(path.c_str(), 0600);
  }
  unsigned char raw[32];
  std::size_t length = sizeof raw;
  if (EVP_PKEY_get_raw_public_key(k.key_, raw, &length) != 1) throw std::runtime_error(path + ": cannot read the public key");
  k.public_key_.assign(reinterpret_cast<const char*>(raw), length);
  // RFC 7638 thumbprint of the JWK: the members in lexical order, no spaces.
  std::string thumbprint_input = R"({"crv":"Ed25519","kty":"OKP","x":")" + base64url(k.public_key_) + R"("})";
  k.kid_ = sha256_base64url(thumbprint_input);
  return k;
}

SigningKey::~SigningKey() { EVP_PKEY_free(key_); }
SigningKey::SigningKey(SigningKey&& o) noexcept : key_(o.key_), kid_(std::move(o.kid_)), public_key_(std::move(o.public_key_)) {
  o.key_ = nullptr;
}
SigningKey& SigningKey::operator=(SigningKey&& o) noexcept {
  std::swap(key_, o.key_);
  std::swap(kid_, o.kid_);
  std::swap(public_key_, o.public_key_);
  return *this;
}

std::string SigningKey::sign(std::string_view payload_json) const {
  std::string input = base64url(R"({"alg":"EdDSA","kid":")" + kid_ + R"(","typ":"JWT"})") + "." + base64url(payload_json);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char signature[64];
  std::size_t length = sizeof signature;
  bool ok = ctx && EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key_) == 1 &&
            EVP_DigestSign(ctx, signature, &length, reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) throw std::runtime_error("signing a receipt failed");
  return input + "." + base64url(std::string_view(reinterpret_cast<const char*>(signature), length));
}

std::string jwk_json(const std::string& public_key, const std::string& kid) {
  return nlohmann::json{{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", base64url(public_key)}, {"kid", kid}, {"alg", "EdDSA"}, {"use", "sig"}}.dump();
}

std::string kid_of(std::string_view jws) {
  auto dot = jws.find('.');
  auto header = from_base64url(jws.substr(0, dot));
  if (!header) return "";
  auto j = nlohmann::json::parse(*header, nullptr, false);
  return j.is_object() && j.contains("kid") && j["kid"].is_string() ? j["kid"].get<std::string>() : "";
}

std::optional<std::string> verify(std::string_view jws, const std::string& public_key, std::string& why) {
  auto first = jws.find('.');
  auto second = first == std::string_view::npos ? first : jws.find('.', first + 1);
  if (second == std::string_view::npos || jws.find('.', second + 1) != std::string_view::npos) {
    why = "not a JWS compact serialization (three parts separated by dots)";
    return std::nullopt;
  }
  auto header = from_base64url(jws.substr(0, first));
  auto payload = from_base64url(jws.substr(first + 1, second - first - 1));
  auto signature = from_base64url(jws.substr(second + 1));
  if (!header || !payload || !signature) {
    why = "a part is not base64url";
    return std::nullopt;
  }
  auto h = nlohmann::json::parse(*header, nullptr, false);
  if (!h.is_object() || h.value("alg", "") != "EdDSA") {
    why = "the header does not say alg EdDSA";
    return std::nullopt;
  }
  EVP_PKEY* key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(public_key.data()),
                                              public_key.size());
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::string_view input = jws.substr(0, second);
  bool ok = key && ctx && EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, key) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature->data()), signature->size(),
                             reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  if (!ok) {
    why = "the signature does not match (the receipt was changed, or another key signed it)";
    return std::nullopt;
  }
  return *payload;
}

}  // namespace plexus::receipts
