#include "config/json_path.hpp"

namespace plexus::config {

void JsonPath::fail(const std::string& message) const {
  throw ConfigError(file_ + ": " + (path_.empty() ? std::string("(top level)") : path_) + ": " +
                    message);
}

void JsonPath::expect_object(std::initializer_list<const char*> allowed) const {
  if (!value_.is_object()) fail("expected an object");
  for (const auto& [key, _] : value_.items()) {
    bool known = false;
    for (const char* a : allowed) known = known || key == a;
    if (!known) {
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      JsonPath(value_, file_, child(key.c_str())).fail("unknown key; allowed keys are: " + list);
    }
  }
}

void JsonPath::expect_array() const {
  if (!value_.is_array()) fail("expected an array");
}

bool JsonPath::has(const char* key) const { return value_.contains(key); }

JsonPath JsonPath::at(const char* key) const {
  if (!value_.contains(key)) JsonPath(value_, file_, child(key)).fail("required key is missing");
  return JsonPath(value_.at(key), file_, child(key));
}

JsonPath JsonPath::at(std::size_t index) const {
  return JsonPath(value_.at(index), file_, path_ + "[" + std::to_string(index) + "]");
}

std::string JsonPath::string(const char* key, std::optional<std::string> fallback) const {
  if (!has(key)) {
    if (fallback) return *fallback;
    at(key);  // throws "required key is missing"
  }
  JsonPath v = at(key);
  if (!v.value().is_string()) v.fail("expected a string");
  return v.value().get<std::string>();
}

std::int64_t JsonPath::integer(const char* key, std::int64_t min, std::int64_t max,
                               std::optional<std::int64_t> fallback) const {
  if (!has(key) && fallback) return *fallback;
  JsonPath v = at(key);
  const auto& j = v.value();
  if (!j.is_number_integer() || j.get<std::int64_t>() < min || j.get<std::int64_t>() > max)
    v.fail("expected an integer from " + std::to_string(min) + " to " + std::to_string(max));
  return j.get<std::int64_t>();
}

double JsonPath::number(const char* key, double min, std::optional<double> fallback) const {
  if (!has(key) && fallback) return *fallback;
  JsonPath v = at(key);
  if (!v.value().is_number() || v.value().get<double>() < min)
    v.fail("expected a number >= " + std::to_string(min));
  return v.value().get<double>();
}

bool JsonPath::boolean(const char* key, std::optional<bool> fallback) const {
  if (!has(key) && fallback) return *fallback;
  JsonPath v = at(key);
  if (!v.value().is_boolean()) v.fail("expected true or false");
  return v.value().get<bool>();
}

}  // namespace plexus::config
