#include "config/schema.hpp"

#include <cmath>
#include <sstream>

namespace plexus::config {
namespace {

using nlohmann::json;

const char* type_name(FieldType t) {
  switch (t) {
    case FieldType::kString: return "string";
    case FieldType::kInteger: return "integer";
    case FieldType::kNumber: return "number";
    case FieldType::kBoolean: return "boolean";
    case FieldType::kStringList: return "string_list";
    case FieldType::kStringMap: return "string_map";
    case FieldType::kObject: return "object";
  }
  return "string";
}

// Whole numbers as written ("1073741824", not "1.07374e+09"); others in the shortest form.
std::string number_text(double v) {
  if (std::abs(v) < 9e15 && v == std::floor(v)) return std::to_string(static_cast<long long>(v));
  std::ostringstream out;
  out << v;
  return out.str();
}

std::string range_text(const ConfigField& f) {
  if (f.min && f.max) return " from " + number_text(*f.min) + " to " + number_text(*f.max);
  if (f.min) return " >= " + number_text(*f.min);
  if (f.max) return " <= " + number_text(*f.max);
  return "";
}

std::string choices_text(const std::vector<std::string>& choices) {
  std::string out;
  for (const auto& c : choices) out += (out.empty() ? "" : ", ") + ("\"" + c + "\"");
  return out;
}

void check_value(const ConfigField& f, const JsonPath& v, json& out);

json check_object(const ConfigSchema& schema, const JsonPath& section) {
  const json& value = section.value();
  if (!value.is_null() && !value.is_object()) section.fail("expected an object");
  if (value.is_object()) {
    for (const auto& [key, _] : value.items()) {
      bool known = false;
      for (const auto& f : schema) known = known || f.name == key;
      if (known) continue;
      std::string list;
      for (const auto& f : schema) list += (list.empty() ? "" : ", ") + f.name;
      section.at(key.c_str()).fail(list.empty() ? "unknown key; this section takes none" : "unknown key; allowed keys are: " + list);
    }
  }
  json out = json::object();
  static const json kEmpty = json::object();
  for (const auto& f : schema) {
    if (value.is_object() && value.contains(f.name)) {
      check_value(f, section.at(f.name.c_str()), out[f.name]);
      continue;
    }
    if (!f.default_json) section.at(f.name.c_str());  // throws "required key is missing"
    if (f.type == FieldType::kObject) {
      out[f.name] = check_object(f.fields, JsonPath(kEmpty, section.file(), section.path().empty() ? f.name : section.path() + "." + f.name));
    } else {
      // A default the field itself refuses is the schema's mistake: say so, where it shows.
      json holder = {{f.name, json::parse(*f.default_json)}};
      try {
        check_value(f, JsonPath(holder, section.file(), section.path()).at(f.name.c_str()), out[f.name]);
      } catch (const ConfigError& e) {
        throw ConfigError(std::string(e.what()) + " (the schema's own default)");
      }
    }
  }
  return out;
}

void check_value(const ConfigField& f, const JsonPath& v, json& out) {
  const json& j = v.value();
  switch (f.type) {
    case FieldType::kString:
      if (!j.is_string()) v.fail("expected a string");
      if (!f.choices.empty()) {
        bool ok = false;
        for (const auto& c : f.choices) ok = ok || j.get<std::string>() == c;
        if (!ok) v.fail("expected one of " + choices_text(f.choices));
      }
      break;
    case FieldType::kInteger: {
      bool in_range = j.is_number_integer() && (!f.min || j.get<double>() >= *f.min) && (!f.max || j.get<double>() <= *f.max);
      if (!in_range) v.fail("expected an integer" + range_text(f));
      break;
    }
    case FieldType::kNumber: {
      bool in_range = j.is_number() && std::isfinite(j.get<double>()) && (!f.min || j.get<double>() >= *f.min) &&
                      (!f.max || j.get<double>() <= *f.max);
      if (!in_range) v.fail("expected a number" + range_text(f));
      break;
    }
    case FieldType::kBoolean:
      if (!j.is_boolean()) v.fail("expected true or false");
      break;
    case FieldType::kStringList:
      if (!j.is_array()) v.fail("expected an array of strings");
      for (std::size_t i = 0; i < j.size(); ++i)
        if (!j[i].is_string()) v.at(i).fail("expected a string");
      break;
    case FieldType::kStringMap:
      if (!j.is_object()) v.fail("expected an object of strings");
      for (const auto& [key, value] : j.items())
        if (!value.is_string()) v.at(key.c_str()).fail("expected a string");
      break;
    case FieldType::kObject:
      out = check_object(f.fields, v);
      return;
  }
  out = j;
}

void append_rows(const ConfigSchema& schema, const std::string& prefix, std::string& out) {
  for (const auto& f : schema) {
    std::string name = prefix + f.name;
    std::string def = !f.default_json ? "required" : f.type == FieldType::kObject ? "" : "`" + *f.default_json + "`";
    std::string constraint = f.type == FieldType::kString && !f.choices.empty() ? " (one of " + choices_text(f.choices) + ")"
                                                                                 : range_text(f).empty() ? "" : " (" + range_text(f).substr(1) + ")";
    out += "| `" + name + "` | " + type_name(f.type) + " | " + def + " | " + f.description + constraint + " |\n";
    if (f.type == FieldType::kObject) append_rows(f.fields, name + ".", out);
  }
}

}  // namespace

json apply_schema(const ConfigSchema& schema, const JsonPath& section) { return check_object(schema, section); }

std::string schema_table(const ConfigSchema& schema) {
  std::string out = "| key | type | default | description |\n|---|---|---|---|\n";
  append_rows(schema, "", out);
  return out;
}

ConfigSchema schema_from_json(const json& declared, const std::string& where) {
  ConfigSchema schema;
  if (!declared.is_object()) throw ConfigError(where + ": expected a table of fields");
  for (const auto& [name, spec] : declared.items()) {
    std::string at = where + "." + name;
    if (!spec.is_object()) throw ConfigError(at + ": expected a table {type = ..., default = ..., description = ...}");
    ConfigField f;
    f.name = name;
    std::string type = spec.value("type", "");
    bool known = false;
    for (auto t : {FieldType::kString, FieldType::kInteger, FieldType::kNumber, FieldType::kBoolean, FieldType::kStringList,
                   FieldType::kStringMap, FieldType::kObject})
      if (type == type_name(t)) f.type = t, known = true;
    if (!known)
      throw ConfigError(at + ".type: expected one of string, integer, number, boolean, string_list, string_map, object");
    for (const auto& [key, _] : spec.items())
      if (key != "type" && key != "default" && key != "min" && key != "max" && key != "choices" && key != "description" &&
          key != "fields")
        throw ConfigError(at + "." + key + ": unknown key; allowed keys are: type, default, min, max, choices, description, fields");
    f.description = spec.value("description", "");
    if (spec.contains("min")) {
      if (!spec["min"].is_number()) throw ConfigError(at + ".min: expected a number");
      f.min = spec["min"].get<double>();
    }
    if (spec.contains("max")) {
      if (!spec["max"].is_number()) throw ConfigError(at + ".max: expected a number");
      f.max = spec["max"].get<double>();
    }
    if (spec.contains("choices")) {
      if (!spec["choices"].is_array()) throw ConfigError(at + ".choices: expected a list of strings");
      for (const auto& c : spec["choices"]) {
        if (!c.is_string()) throw ConfigError(at + ".choices: expected a list of strings");
        f.choices.push_back(c.get<std::string>());
      }
    }
    if (f.type == FieldType::kObject) {
      f.fields = schema_from_json(spec.value("fields", json::object()), at + ".fields");
      f.default_json = "{}";
    } else if (spec.contains("default")) {
      // The default must itself pass the field's checks: a schema cannot promise what it refuses.
      json holder = json::object();
      const json& def = spec["default"];
      bool empty_table = def.is_object() && def.empty();  // Lua's {} comes through as an object
      if (empty_table && f.type == FieldType::kStringList) holder[name] = json::array();
      else holder[name] = def;
      json ignored;
      check_value(f, JsonPath(holder, where, "").at(name.c_str()), ignored);
      f.default_json = holder[name].dump();
    }
    schema.push_back(std::move(f));
  }
  return schema;
}

}  // namespace plexus::config
