#pragma once
// What a config section may contain, declared once as data: its fields with their types,
// defaults, ranges, allowed values and descriptions. The router validates a section against its
// schema (unknown keys, types, ranges, choices), fills in the defaults and hands the owner the
// checked object; every error names the file and the key path
// ("plexus.json: plugins[1].config.timeout_ms: expected an integer from 1 to 60000").
//
// One mechanism for the router's own sections, provider adapters' "options" and plugins'
// "config": a plugin returns its schema from its descriptor (plugin_abi.hpp), a Lua plugin sets
// a global `schema` table (docs/plugins.md), and `plexus --print-schema` lists them all.
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace plexus {

enum class FieldType {
  kString,
  kInteger,
  kNumber,
  kBoolean,
  kStringList,  // an array of strings
  kStringMap,   // an object of string values (header names to values, say)
  kObject,      // a nested section with its own fields
};

struct ConfigField {
  std::string name;
  FieldType type = FieldType::kString;
  std::string description;
  std::optional<std::string> default_json;  // JSON text; none: the field is required
  std::optional<double> min, max;           // integers and numbers, inclusive
  std::vector<std::string> choices;         // strings: the allowed values (empty: any)
  std::vector<ConfigField> fields;          // kObject: its fields

  // Builders, so a schema reads as a table:
  //   field::integer("timeout_ms", 2000, "How long to wait").range(1, 60000)
  ConfigField& range(double lo, double hi) {
    min = lo;
    max = hi;
    return *this;
  }
  ConfigField& at_least(double lo) {
    min = lo;
    return *this;
  }
  ConfigField& one_of(std::vector<std::string> allowed) {
    choices = std::move(allowed);
    return *this;
  }
  ConfigField& required() {
    default_json.reset();
    return *this;
  }
};

using ConfigSchema = std::vector<ConfigField>;

namespace field {
// A string as JSON text (the defaults are JSON): quotes, backslashes and control characters escaped.
inline std::string quote_json(const std::string& text) {
  static const char* kHex = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

inline ConfigField string(std::string name, std::string fallback, std::string description) {
  return {std::move(name), FieldType::kString, std::move(description), quote_json(fallback), {}, {}, {}, {}};
}
inline ConfigField integer(std::string name, long long fallback, std::string description) {
  return {std::move(name), FieldType::kInteger, std::move(description), std::to_string(fallback), {}, {}, {}, {}};
}
inline ConfigField number(std::string name, double fallback, std::string description) {
  std::ostringstream text;  // "0.8", "1": the shortest form, not to_string's "0.800000"
  text << fallback;
  return {std::move(name), FieldType::kNumber, std::move(description), text.str(), {}, {}, {}, {}};
}
inline ConfigField boolean(std::string name, bool fallback, std::string description) {
  return {std::move(name), FieldType::kBoolean, std::move(description), fallback ? "true" : "false", {}, {}, {}, {}};
}
inline ConfigField string_list(std::string name, std::string description) {
  return {std::move(name), FieldType::kStringList, std::move(description), "[]", {}, {}, {}, {}};
}
inline ConfigField string_map(std::string name, std::string description) {
  return {std::move(name), FieldType::kStringMap, std::move(description), "{}", {}, {}, {}, {}};
}
inline ConfigField object(std::string name, std::vector<ConfigField> fields, std::string description) {
  return {std::move(name), FieldType::kObject, std::move(description), "{}", {}, {}, {}, std::move(fields)};
}
}  // namespace field

}  // namespace plexus
