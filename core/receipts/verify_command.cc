#include "receipts/verify_command.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/blocking_http.hpp"
#include "receipts/jws.hpp"

namespace plexus::receipts {
namespace {

using nlohmann::json;

constexpr const char* kUsage =
    "Usage: plexus receipt verify RECEIPT [--body FILE] [--jwks FILE|URL]\n"
    "  RECEIPT   the JWS (x-plexus-receipt, or \"receipt\" of GET /v1/receipts/{id}), or @FILE holding it\n"
    "  --body    the request body as sent: its SHA-256 must be the receipt's body_sha256\n"
    "  --jwks    the router's keys (GET /.well-known/jwks.json), a file or an http(s) URL\n";

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream buf;
  buf << in.rdbuf();
  out = buf.str();
  return true;
}

// A blocking GET: this is a command-line tool, not the router.
bool fetch(const std::string& url, std::string& out, std::string& why) {
  auto answer = cli::blocking_http("GET", url);
  if (answer.status != 200) {
    why = answer.status == 0 ? answer.error : "HTTP " + std::to_string(answer.status);
    return false;
  }
  out = std::move(answer.body);
  return true;
}

int invalid(const std::string& why) {
  std::printf("receipt INVALID: %s\n", why.c_str());
  return 1;
}

}  // namespace

int verify_command(const std::vector<std::string>& args) {
  if (args.size() < 2 || args[0] != "verify") {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string receipt = args[1], body_file, jwks_from;
  for (std::size_t i = 2; i < args.size(); ++i) {
    if ((args[i] == "--body" || args[i] == "--jwks") && i + 1 < args.size()) {
      (args[i] == "--body" ? body_file : jwks_from) = args[i + 1];
      ++i;
    } else {
      std::fprintf(stderr, "plexus receipt: unknown argument '%s'\n%s", args[i].c_str(), kUsage);
      return 2;
    }
  }
  if (jwks_from.empty()) {
    std::fprintf(stderr, "plexus receipt: --jwks is needed (the router's /.well-known/jwks.json)\n%s", kUsage);
    return 2;
  }
  if (receipt.rfind('@', 0) == 0 && !read_file(receipt.substr(1), receipt)) {
    std::fprintf(stderr, "plexus receipt: cannot read %s\n", receipt.c_str() + 1);
    return 2;
  }
  while (!receipt.empty() && (receipt.back() == '\n' || receipt.back() == ' ')) receipt.pop_back();
  std::string jwks_text, why;
  bool got = jwks_from.rfind("http://", 0) == 0 || jwks_from.rfind("https://", 0) == 0 ? fetch(jwks_from, jwks_text, why)
                                                                                      : read_file(jwks_from, jwks_text);
  if (!got) {
    std::fprintf(stderr, "plexus receipt: cannot read the keys from %s%s\n", jwks_from.c_str(), why.empty() ? "" : (": " + why).c_str());
    return 2;
  }
  json jwks = json::parse(jwks_text, nullptr, false);
  if (!jwks.is_object() || !jwks.contains("keys") || !jwks["keys"].is_array()) return invalid("the key set is not a JWK Set");
  std::string kid = kid_of(receipt);
  std::string public_key;
  for (const auto& k : jwks["keys"])
    if (k.is_object() && k.value("kid", "") == kid && k.value("kty", "") == "OKP" && k.value("crv", "") == "Ed25519")
      if (auto x = from_base64url(k.value("x", ""))) public_key = *x;
  if (public_key.size() != 32) return invalid("no Ed25519 key with kid '" + kid + "' in the key set");
  auto payload = verify(receipt, public_key, why);
  if (!payload) return invalid(why);
  json claims = json::parse(*payload, nullptr, false);
  if (!claims.is_object()) return invalid("the claims are not a JSON object");
  if (!body_file.empty()) {
    std::string body;
    if (!read_file(body_file, body)) {
      std::fprintf(stderr, "plexus receipt: cannot read %s\n", body_file.c_str());
      return 2;
    }
    if (sha256_base64url(body) != claims.value("body_sha256", ""))
      return invalid("the body's SHA-256 is not the receipt's body_sha256: this receipt is for another request");
  }
  std::printf("receipt OK: request %s, model %s, node %s, %lld prompt + %lld completion tokens%s, cost %.6f, signed by %s\n",
              claims.value("request_id", "?").c_str(), claims.value("model", "?").c_str(), claims.value("node", "?").c_str(),
              static_cast<long long>(claims.value("prompt_tokens", 0LL)), static_cast<long long>(claims.value("completion_tokens", 0LL)),
              claims.value("usage_estimated", false) ? " (estimated)" : "", claims.value("cost", 0.0), kid.c_str());
  return 0;
}

}  // namespace plexus::receipts
