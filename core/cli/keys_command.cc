#include "cli/keys_command.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>

#include "cli/blocking_http.hpp"

namespace plexus::cli {
namespace {

using nlohmann::json;

constexpr const char* kUsage =
    "Usage: plexus keys create [--id ID] [--group G] [--admin] [--rpm N] [--tpm N] [--budget X] ROUTER\n"
    "       plexus keys list ROUTER\n"
    "       plexus keys revoke ID ROUTER\n"
    "  ROUTER: --router URL (e.g. http://127.0.0.1:8080) and --admin-key KEY, or PLEXUS_ROUTER and\n"
    "  PLEXUS_ADMIN_KEY in the environment. The new key is printed once; the router keeps its hash.\n";

int usage(const char* why) {
  if (why) std::fprintf(stderr, "plexus keys: %s\n", why);
  std::fputs(kUsage, stderr);
  return 2;
}

}  // namespace

int keys_command(const std::vector<std::string>& args) {
  if (args.empty()) return usage(nullptr);
  const std::string& verb = args[0];
  std::string router = std::getenv("PLEXUS_ROUTER") ? std::getenv("PLEXUS_ROUTER") : "";
  std::string admin_key = std::getenv("PLEXUS_ADMIN_KEY") ? std::getenv("PLEXUS_ADMIN_KEY") : "";
  json body = json::object();
  std::string id;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string* { return i + 1 < args.size() ? &args[++i] : nullptr; };
    const std::string* v = nullptr;
    if (a == "--admin") {
      body["admin"] = true;
      continue;
    }
    if (a.rfind("--", 0) != 0) {
      if (verb == "revoke" && id.empty()) {
        id = a;
        continue;
      }
      return usage(("unexpected argument '" + a + "'").c_str());
    }
    if (!(v = value())) return usage((a + " needs a value").c_str());
    if (a == "--router") router = *v;
    else if (a == "--admin-key") admin_key = *v;
    else if (a == "--id" || a == "--group") body[a.substr(2)] = *v;
    else if (a == "--rpm" || a == "--tpm") body[a.substr(2)] = std::strtoll(v->c_str(), nullptr, 10);
    else if (a == "--budget") body["budget"] = std::strtod(v->c_str(), nullptr);
    else return usage(("unknown option '" + a + "'").c_str());
  }
  if (router.empty() || admin_key.empty()) return usage("give --router and --admin-key (or PLEXUS_ROUTER, PLEXUS_ADMIN_KEY)");
  while (!router.empty() && router.back() == '/') router.pop_back();
  std::vector<std::pair<std::string, std::string>> headers = {{"Authorization", "Bearer " + admin_key},
                                                               {"Content-Type", "application/json"}};
  HttpAnswer answer;
  if (verb == "create") answer = blocking_http("POST", router + "/v1/keys", headers, body.dump());
  else if (verb == "list") answer = blocking_http("GET", router + "/v1/keys", headers);
  else if (verb == "revoke" && !id.empty()) answer = blocking_http("DELETE", router + "/v1/keys/" + id, headers);
  else return usage(verb == "revoke" ? "revoke needs the key's id" : ("unknown command '" + verb + "'").c_str());
  if (answer.status == 0) {
    std::fprintf(stderr, "plexus keys: no answer from %s: %s\n", router.c_str(), answer.error.c_str());
    return 2;
  }
  json j = json::parse(answer.body, nullptr, false);
  if (answer.status >= 300) {
    std::string message = j.is_object() && j.contains("error") ? j["error"].value("message", answer.body) : answer.body;
    std::fprintf(stderr, "plexus keys: the router answered %d: %s\n", answer.status, message.c_str());
    return 1;
  }
  if (verb == "create") {
    std::printf("%s\n", j.value("key", "").c_str());
    std::fprintf(stderr, "created key '%s' (group %s); it is shown only this once\n", j.value("id", "").c_str(), j.value("group", "").c_str());
  } else if (verb == "list") {
    std::printf("%-24s %-12s %-6s %8s %10s %12s %12s  %s\n", "ID", "GROUP", "ADMIN", "RPM", "TPM", "BUDGET", "SPENT", "SOURCE");
    for (const auto& k : j["data"])
      std::printf("%-24s %-12s %-6s %8lld %10lld %12s %12s  %s\n", k.value("id", "").c_str(), k.value("group", "").c_str(),
                  k.value("admin", false) ? "yes" : "no", static_cast<long long>(k.value("rpm", 0LL)),
                  static_cast<long long>(k.value("tpm", 0LL)), k["budget"].is_null() ? "-" : std::to_string(k["budget"].get<double>()).c_str(),
                  k["spent"].is_null() ? "-" : std::to_string(k["spent"].get<double>()).c_str(), k.value("source", "").c_str());
  } else {
    std::printf("revoked key '%s'\n", id.c_str());
  }
  return 0;
}

}  // namespace plexus::cli
