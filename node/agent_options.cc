#include "agent_options.hpp"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "config/json_path.hpp"

namespace plexus::node {

const char* const kAgentUsage = R"(Usage: plexus-node --router HOST:PORT --token TOKEN [options]
       plexus-node --config FILE [options]

Joins a Plexus router from behind NAT (it dials out and listens on no port) and serves its
orders with a local LLM backend.

  --router HOST:PORT[,...]  the router's node port; several routers (a cluster): the node
                            joins every one, its --max-concurrency split between them
  --token TOKEN             this node's token (from the router's operator)
  --tls                     TLS to the router (system CAs); --tls-ca FILE: trust this CA instead
  --backend URL|demo        the backend's base URL (e.g. http://127.0.0.1:11434); "demo" serves the
                            embedded demo model. Default: look on loopback for llama.cpp (8080),
                            Ollama (11434), LM Studio (1234) and vLLM (8000)
  --provider NAME           the adapter: openai, ollama, llamacpp, demo (default: what fits)
  --backend-options JSON    the adapter's options, e.g. '{"tokens_per_second": 200}'
  --api-key KEY             for a backend that wants one
  --models A,B              serve only these models
  --embedding-models A,B    these of the backend's models make embeddings (served at the router's
                            /v1/embeddings, never for chat)
  --name NAME               default: the host name
  --region REGION           e.g. eu-west
  --price-in X              price per 1K prompt tokens
  --price-out Y             price per 1K completion tokens
  --max-concurrency K       orders run at once (default 4)
  --probe URL[,URL...]      where to look for a backend instead of the usual ports
  --drain-grace SECONDS     on SIGTERM, how long to finish held orders (default 30)
  --log-level LEVEL         trace, debug, info, warn, error
  --detect-only             find the backend, print what would be served (JSON) and exit
  --live-bids               bid in the router's auctions: the advertised price scaled by how busy
                            the node is (half when idle, full when every slot is taken)
  --config FILE             the same keys in a JSON file: {"router": ..., "token": ...,
                            "price_in": ..., "max_concurrency": ...}
  --help, --version
)";

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

namespace {

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "node";
  std::string name;
  for (char c : std::string(buf))  // the router accepts [A-Za-z0-9._-]
    name += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') ? c : '-';
  return name.substr(0, 64);
}

// One setting by its file key, from text (command line) into the options. Throws
// std::invalid_argument with a message that follows the key.
void set(AgentOptions& o, const std::string& key, const std::string& value) {
  auto number = [&](double min, double max) {
    std::size_t used = 0;
    double v = 0;
    try {
      v = std::stod(value, &used);
    } catch (...) {
      used = 0;
    }
    if (used != value.size() || !(v >= min && v <= max)) {
      std::ostringstream why;
      why << "expected a number from " << min << " to " << max << ", got '" << value << "'";
      throw std::invalid_argument(why.str());
    }
    return v;
  };
  if (key == "router") o.router = value;
  else if (key == "token") o.token = value;
  else if (key == "tls_ca") o.tls_ca = value, o.tls = true;
  else if (key == "backend") o.backend = value;
  else if (key == "provider") o.provider = value;
  else if (key == "backend_options") o.backend_options = value;
  else if (key == "api_key") o.api_key = value;
  else if (key == "models") o.models = split_list(value);
  else if (key == "embedding_models") o.embedding_models = split_list(value);
  else if (key == "name") o.name = value;
  else if (key == "region") o.region = value;
  else if (key == "price_in") o.price_in = number(0, 1e6);
  else if (key == "price_out") o.price_out = number(0, 1e6);
  else if (key == "max_concurrency") o.max_concurrency = static_cast<int>(number(1, 10000));
  else if (key == "probe") o.probe_urls = split_list(value);
  else if (key == "drain_grace_s") o.drain_grace = std::chrono::seconds(static_cast<int>(number(0, 3600)));
  else if (key == "log_level") o.log_level = value;
  else throw std::invalid_argument("unknown setting");
}

void load_file(const std::string& file, AgentOptions& o) {
  std::ifstream in(file);
  if (!in) throw std::invalid_argument(file + ": cannot open the file");
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json doc = nlohmann::json::parse(text.str(), nullptr, false, true);
  if (doc.is_discarded()) throw std::invalid_argument(file + ": invalid JSON");
  config::JsonPath root(doc, file);
  try {
    root.expect_object({"router", "token", "tls", "tls_ca", "backend", "provider", "backend_options", "api_key",
                        "models", "embedding_models", "name", "region", "price_in", "price_out", "max_concurrency", "probe",
                        "drain_grace_s", "log_level"});
    for (const auto& [key, value] : doc.items()) {
      if (key == "tls") {
        o.tls = root.boolean("tls");
      } else if (key == "backend_options") {
        if (!value.is_object()) root.at("backend_options").fail("expected an object");
        o.backend_options = value.dump();
      } else if (value.is_array()) {
        std::string joined;
        for (const auto& item : value) {
          if (!item.is_string()) root.at(key.c_str()).fail("expected a list of strings");
          joined += (joined.empty() ? "" : ",") + item.get<std::string>();
        }
        set(o, key, joined);
      } else {
        try {
          set(o, key, value.is_string() ? value.get<std::string>() : value.dump());
        } catch (const std::invalid_argument& e) {
          root.at(key.c_str()).fail(e.what());
        }
      }
    }
  } catch (const ConfigError& e) {
    throw std::invalid_argument(e.what());
  }
}

}  // namespace

ParsedOptions parse_options(int argc, const char* const* argv) {
  ParsedOptions out;
  auto stop = [&](int code, std::string message) {
    out.exit = true;
    out.exit_code = code;
    out.message = std::move(message);
    return out;
  };
  std::vector<std::pair<std::string, std::string>> given;  // applied after --config
  std::string config_file;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return stop(0, kAgentUsage);
    if (arg == "--version") return stop(0, std::string("plexus-node ") + PLEXUS_VERSION + "\n");
    if (arg == "--tls") {
      given.emplace_back("tls", "");
      continue;
    }
    if (arg == "--detect-only") {
      out.options.detect_only = true;
      continue;
    }
    if (arg == "--live-bids") {
      out.options.live_bids = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) return stop(2, "plexus-node: unexpected argument '" + arg + "'\n" + kAgentUsage);
    std::string key = arg.substr(2);
    for (char& c : key)
      if (c == '-') c = '_';
    if (key == "drain_grace") key = "drain_grace_s";
    if (i + 1 >= argc) return stop(2, "plexus-node: " + arg + " needs a value\n");
    if (key == "config")
      config_file = argv[++i];
    else
      given.emplace_back(key, argv[++i]);
  }
  try {
    if (!config_file.empty()) load_file(config_file, out.options);
    for (const auto& [key, value] : given) {
      if (key == "tls") {
        out.options.tls = true;
        continue;
      }
      try {
        set(out.options, key, value);
      } catch (const std::invalid_argument& e) {
        std::string flag = "--" + key;
        for (char& c : flag)
          if (c == '_') c = '-';
        return stop(2, "plexus-node: " + flag + ": " + e.what() + "\n");
      }
    }
  } catch (const std::invalid_argument& e) {
    return stop(2, std::string("plexus-node: ") + e.what() + "\n");
  }
  auto& o = out.options;
  if (o.name.empty()) o.name = host_name();
  if (o.detect_only) return out;
  if (o.router.empty()) return stop(2, "plexus-node: --router HOST:PORT is required (the router's node port)\n");
  if (o.token.empty()) return stop(2, "plexus-node: --token is required (a node token from the router's operator)\n");
  return out;
}

}  // namespace plexus::node
