#pragma once
// The one validator of declared config schemas (plexus/config_schema.hpp): core sections,
// provider options and plugin configs all go through it, so they fail the same way.
#include <nlohmann/json.hpp>

#include <string>

#include "config/json_path.hpp"
#include "plexus/config_schema.hpp"

namespace plexus::config {

// Checks `section` (an object; null counts as {}) against `schema` and returns it with every
// default filled in. Throws ConfigError naming the file and the key path of the first problem:
// an unknown key (with the allowed ones), a wrong type, a value out of range or not one of the
// choices, a required key missing.
nlohmann::json apply_schema(const ConfigSchema& schema, const JsonPath& section);

// A schema as a Markdown table (name, type, default, description), nested sections indented by
// their dotted name: what `plexus --print-schema` and the docs show.
std::string schema_table(const ConfigSchema& schema);

// A schema declared outside C++ (a Lua plugin's `schema` table, as JSON): the same fields, with
// "type" one of string, integer, number, boolean, string_list, string_map, object. Throws
// ConfigError naming `where` and the field.
ConfigSchema schema_from_json(const nlohmann::json& declared, const std::string& where);

}  // namespace plexus::config
