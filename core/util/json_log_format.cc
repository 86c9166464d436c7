#include "util/json_log_format.hpp"

#include <spdlog/details/fmt_helper.h>
#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>

#include <chrono>
#include <ctime>
#include <string_view>

namespace plexus {
namespace {

void append(spdlog::memory_buf_t& out, std::string_view text) { out.append(text.data(), text.data() + text.size()); }

void append_escaped(spdlog::memory_buf_t& out, std::string_view text) {
  static const char* hex = "0123456789abcdef";
  for (unsigned char c : text) {
    switch (c) {
      case '"': append(out, "\\\""); break;
      case '\\': append(out, "\\\\"); break;
      case '\n': append(out, "\\n"); break;
      case '\r': append(out, "\\r"); break;
      case '\t': append(out, "\\t"); break;
      default:
        if (c < 0x20) {
          char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
          append(out, u);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    auto t = spdlog::log_clock::to_time_t(msg.time);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char when[96];
    std::snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    std::string_view payload(msg.payload.data(), msg.payload.size());
    auto level = spdlog::level::to_string_view(msg.level);
    append(dest, "{\"time\":\"");
    append(dest, when);
    append(dest, "\",\"level\":\"");
    append(dest, std::string_view(level.data(), level.size()));
    if (payload.rfind("{\"event\":", 0) == 0 && payload.back() == '}') {
      append(dest, "\",");
      append(dest, payload.substr(1));  // the router's own event object: its fields, merged
    } else {
      append(dest, "\",\"message\":\"");
      append_escaped(dest, payload);
      append(dest, "\"}");
    }
    append(dest, "\n");
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

}  // namespace

std::unique_ptr<spdlog::formatter> make_json_log_formatter() { return std::make_unique<JsonFormatter>(); }

}  // namespace plexus
