#pragma once
// JWS compact serialization (RFC 7515) with EdDSA over Ed25519 (RFC 8037), on OpenSSL's EVP API:
// what a receipt is, so that any JOSE library verifies it. The keys live in a PEM file.
#include <memory>
#include <optional>
#include <string>
#include <string_view>

struct evp_pkey_st;

namespace plexus::receipts {

std::string base64url(std::string_view bytes);                    // no padding
std::optional<std::string> from_base64url(std::string_view text);  // nullopt: not base64url
std::string sha256_base64url(std::string_view bytes);

class SigningKey {
 public:
  // Loads the PEM private key at `path`, or makes a new Ed25519 key there (mode 0600) when the
  // file does not exist. Throws std::runtime_error naming the file.
  static SigningKey load_or_create(const std::string& path);
  ~SigningKey();
  SigningKey(SigningKey&&) noexcept;
  SigningKey& operator=(SigningKey&&) noexcept;

  const std::string& kid() const { return kid_; }                // the public key's thumbprint
  const std::string& public_key() const { return public_key_; }  // 32 raw bytes
  // header.payload.signature, the header {"alg":"EdDSA","kid":...,"typ":"JWT"}.
  std::string sign(std::string_view payload_json) const;

 private:
  SigningKey() = default;
  evp_pkey_st* key_ = nullptr;
  std::string kid_;
  std::string public_key_;
};

// The JWK of an Ed25519 public key (RFC 8037 "OKP"), as JSON text.
std::string jwk_json(const std::string& public_key, const std::string& kid);

// Checks a compact JWS against an Ed25519 public key (32 raw bytes). On success, the payload
// (JSON text); else nullopt and `why` says what is wrong.
std::optional<std::string> verify(std::string_view jws, const std::string& public_key, std::string& why);
// The "kid" of a compact JWS's header ("" when it has none or the header is not readable).
std::string kid_of(std::string_view jws);

}  // namespace plexus::receipts
