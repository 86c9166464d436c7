// The one schema mechanism: declared fields checked with file-and-key-path errors, defaults
// filled in, nested sections, and schemas declared as data (a Lua plugin's table).
#include "config/schema.hpp"

#include <gtest/gtest.h>

namespace plexus::config {
namespace {

using nlohmann::json;

const ConfigSchema& sample() {
  static const ConfigSchema s = {
      field::integer("timeout_ms", 2000, "How long to wait").range(1, 60000),
      field::string("engine", "searxng", "Which backend").one_of({"searxng", "brave"}),
      field::number("ratio", 0.5, "A share").range(0, 1),
      field::boolean("on", false, "Switch"),
      field::string_list("tags", "Labels"),
      field::string_map("headers", "Extra headers"),
      field::string("url", "", "Where").required(),
      field::object("limits", {field::integer("pages", 50, "Most pages").at_least(1)}, "Bounds"),
  };
  return s;
}

std::string error_of(const std::string& text) {
  json doc = json::parse(text);
  try {
    apply_schema(sample(), JsonPath(doc, "conf.json", "plugins[1].config"));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "accepted";
}

TEST(ConfigSchema, FillsDefaultsAndKeepsWhatWasWritten) {
  json doc = json::parse(R"({"url":"http://x","timeout_ms":5,"limits":{}})");
  json out = apply_schema(sample(), JsonPath(doc, "conf.json", "plugins[1].config"));
  EXPECT_EQ(out["timeout_ms"], 5);
  EXPECT_EQ(out["engine"], "searxng");
  EXPECT_EQ(out["ratio"], 0.5);
  EXPECT_EQ(out["on"], false);
  EXPECT_EQ(out["tags"], json::array());
  EXPECT_EQ(out["headers"], json::object());
  EXPECT_EQ(out["url"], "http://x");
  EXPECT_EQ(out["limits"]["pages"], 50);
}

TEST(ConfigSchema, AbsentNestedSectionGetsItsDefaults) {
  json doc = json::parse(R"({"url":"u"})");
  EXPECT_EQ(apply_schema(sample(), JsonPath(doc, "f", ""))["limits"]["pages"], 50);
}

TEST(ConfigSchema, ErrorsNameTheFileAndKeyPath) {
  EXPECT_EQ(error_of(R"({"url":"u","timeout_ms":0})"), "conf.json: plugins[1].config.timeout_ms: expected an integer from 1 to 60000");
  EXPECT_EQ(error_of(R"({"url":"u","timeout_ms":1.5})"), "conf.json: plugins[1].config.timeout_ms: expected an integer from 1 to 60000");
  EXPECT_EQ(error_of(R"({"url":"u","engine":"bing"})"), "conf.json: plugins[1].config.engine: expected one of \"searxng\", \"brave\"");
  EXPECT_EQ(error_of(R"({"url":"u","ratio":2})"), "conf.json: plugins[1].config.ratio: expected a number from 0 to 1");
  EXPECT_EQ(error_of(R"({"url":"u","on":"yes"})"), "conf.json: plugins[1].config.on: expected true or false");
  EXPECT_EQ(error_of(R"({"url":"u","tags":["a",3]})"), "conf.json: plugins[1].config.tags[1]: expected a string");
  EXPECT_EQ(error_of(R"({"url":"u","headers":{"a":1}})"), "conf.json: plugins[1].config.headers.a: expected a string");
  EXPECT_EQ(error_of(R"({"timeout_ms":3})"), "conf.json: plugins[1].config.url: required key is missing");
  EXPECT_EQ(error_of(R"({"url":"u","limits":{"pages":0}})"), "conf.json: plugins[1].config.limits.pages: expected an integer >= 1");
  EXPECT_EQ(error_of(R"({"url":"u","limits":{"pagez":3}})"), "conf.json: plugins[1].config.limits.pagez: unknown key; allowed keys are: pages");
  EXPECT_EQ(error_of(R"({"url":"u","bogus":1})"),
            "conf.json: plugins[1].config.bogus: unknown key; allowed keys are: timeout_ms, engine, ratio, on, tags, headers, url, limits");
  EXPECT_EQ(error_of(R"([1])"), "conf.json: plugins[1].config: expected an object");
}

TEST(ConfigSchema, DeclaredAsData) {
  json declared = json::parse(R"({
    "max_results": {"type": "integer", "default": 5, "min": 1, "max": 20, "description": "Results"},
    "mode": {"type": "string", "default": "fast", "choices": ["fast", "slow"]},
    "words": {"type": "string_list", "default": {}},
    "nested": {"type": "object", "fields": {"depth": {"type": "integer", "default": 2}}}
  })");
  ConfigSchema schema = schema_from_json(declared, "p.lua: schema");
  json empty = json::object();
  json out = apply_schema(schema, JsonPath(empty, "f", "plugins[0].config"));
  EXPECT_EQ(out["max_results"], 5);
  EXPECT_EQ(out["mode"], "fast");
  EXPECT_EQ(out["words"], json::array());
  EXPECT_EQ(out["nested"]["depth"], 2);
  json bad = json::parse(R"({"max_results": 50})");
  EXPECT_THROW(apply_schema(schema, JsonPath(bad, "f", "")), ConfigError);
}

TEST(ConfigSchema, DeclarationErrorsNameTheField) {
  auto error = [](const char* text) {
    try {
      schema_from_json(json::parse(text), "p.lua: schema");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(error(R"({"a": {"type": "float"}})"),
            "p.lua: schema.a.type: expected one of string, integer, number, boolean, string_list, string_map, object");
  EXPECT_EQ(error(R"({"a": {"type": "integer", "default": 0, "min": 1}})"), "p.lua: schema: a: expected an integer >= 1");
  EXPECT_EQ(error(R"({"a": {"type": "integer", "dflt": 0}})"),
            "p.lua: schema.a.dflt: unknown key; allowed keys are: type, default, min, max, choices, description, fields");
}

TEST(ConfigSchema, TableDocumentsEveryField) {
  std::string table = schema_table(sample());
  EXPECT_NE(table.find("| `timeout_ms` | integer | `2000` | How long to wait (from 1 to 60000) |"), std::string::npos) << table;
  EXPECT_NE(table.find("| `url` | string | required | Where |"), std::string::npos) << table;
  EXPECT_NE(table.find("| `limits.pages` | integer | `50` |"), std::string::npos) << table;
}

}  // namespace
}  // namespace plexus::config
