#pragma once
// log.format "json": one JSON object per line for log shippers. Every line is
// {"time", "level", "message"}; a line the router writes as an event object of its own
// ({"event": "access", ...}, built with nlohmann so it is valid JSON) has its fields merged in
// instead of a message.
#include <memory>

namespace spdlog {
class formatter;
}

namespace plexus {

std::unique_ptr<spdlog::formatter> make_json_log_formatter();

}  // namespace plexus
