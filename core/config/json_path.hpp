#pragma once
// A cursor over a JSON config value that knows its own key path, so every validation error
// reads "FILE: upstreams[1].timeouts.connect_ms: expected an integer >= 1".
#include <nlohmann/json.hpp>

#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace plexus::config {

class JsonPath {
 public:
  JsonPath(const nlohmann::json& value, std::string file, std::string path = "")
      : value_(value), file_(std::move(file)), path_(std::move(path)) {}

  const nlohmann::json& value() const { return value_; }
  const std::string& path() const { return path_; }
  const std::string& file() const { return file_; }

  [[noreturn]] void fail(const std::string& message) const;

  // Requires an object whose keys are all in `allowed`; else names the first unknown key.
  void expect_object(std::initializer_list<const char*> allowed) const;
  void expect_array() const;

  bool has(const char* key) const;
  JsonPath at(const char* key) const;  // the key must exist
  JsonPath at(std::size_t index) const;
  std::size_t size() const { return value_.size(); }

  std::string string(const char* key, std::optional<std::string> fallback = std::nullopt) const;
  std::int64_t integer(const char* key, std::int64_t min, std::int64_t max,
                       std::optional<std::int64_t> fallback = std::nullopt) const;
  double number(const char* key, double min, std::optional<double> fallback = std::nullopt) const;
  bool boolean(const char* key, std::optional<bool> fallback = std::nullopt) const;

 private:
  std::string child(const char* key) const { return path_.empty() ? key : path_ + "." + key; }
  const nlohmann::json& value_;
  std::string file_;
  std::string path_;
};

}  // namespace plexus::config
