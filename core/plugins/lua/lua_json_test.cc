// The JSON bridge: what a hook receives reads, changes and encodes like the plain tables it
// replaced, though its fields are only read from the document when first used.
#include "plugins/lua/lua_json.hpp"

#include <gtest/gtest.h>
#include <lua.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "plugins/lua/lua_vm.hpp"

namespace plexus::lua {
namespace {

using nlohmann::json;

std::unique_ptr<Vm> make(const std::string& src, Limits limits = {}) {
  return std::make_unique<Vm>("test.lua", src, "{}", limits, [](int, const std::string&) {});
}

// Calls global `f` with `text` decoded as a hook gets it; returns what f returns, as JSON.
json call_with(Vm& vm, const std::string& text, const char* f = "f") {
  json out;
  vm.run([&](lua_State* L) {
    if (!push_json_text(L, text)) throw std::runtime_error("not JSON");
    int arg = lua_gettop(L);
    if (!vm.push_global_function(f)) throw std::runtime_error("no function");
    lua_pushvalue(L, arg);
    vm.call(1, 1);
    out = to_json(L, -1);
  });
  return out;
}

// Decodes `text`, lets global `f` change it, and returns the changed value, as the host reads a
// MODIFIED request back.
json changed_by(Vm& vm, const std::string& text) {
  json out;
  vm.run([&](lua_State* L) {
    if (!push_json_text(L, text)) throw std::runtime_error("not JSON");
    int arg = lua_gettop(L);
    vm.push_global_function("f");
    lua_pushvalue(L, arg);
    vm.call(1, 0);
    out = to_json(L, arg);
  });
  return out;
}

const std::string kRequest =
    R"({"model":"m","user":"u1","n":7,"t":0.5,"ok":true,"none":null,"big":18446744073709551615,)"
    R"("messages":[{"role":"system","content":"a"},{"role":"user","content":"b"}],"empty":[],"obj":{}})";

TEST(LuaJson, ReadsLikeAPlainTable) {
  auto vm = make(R"(
    function f(r)
      local keys = {}
      for k in pairs(r) do keys[#keys + 1] = k end
      table.sort(keys)
      local roles = {}
      for i, m in ipairs(r.messages) do roles[i] = m.role end
      return {
        model = r.model, n = r.n, t = r.t, ok = r.ok, none = r.none == plexus.null, big = r.big,
        missing = r.missing == nil, count = #r.messages, roles = table.concat(roles, ","),
        same = r.messages == r.messages and r.messages[1] == r.messages[1], kind = type(r.obj),
        keys = table.concat(keys, ","), empty = #r.empty, first = next(r.obj) == nil,
        numeric = r[1] == nil, printed = tostring(r.messages[2]):sub(1, 6), list = tostring(r.messages):sub(1, 6),
      }
    end)");
  json r = call_with(*vm, kRequest);
  EXPECT_EQ(r["model"], "m");
  EXPECT_EQ(r["n"], 7);
  EXPECT_EQ(r["t"], 0.5);
  EXPECT_EQ(r["ok"], true);
  EXPECT_EQ(r["none"], true);
  EXPECT_DOUBLE_EQ(r["big"].get<double>(), 18446744073709551615.0) << "beyond int64: a float";
  EXPECT_EQ(r["missing"], true);
  EXPECT_EQ(r["count"], 2);
  EXPECT_EQ(r["roles"], "system,user");
  EXPECT_EQ(r["same"], true) << "a field read twice is the same table";
  EXPECT_EQ(r["kind"], "table");
  EXPECT_EQ(r["keys"], "big,empty,messages,model,n,none,obj,ok,t,user");
  EXPECT_EQ(r["empty"], 0);
  EXPECT_EQ(r["first"], true);
  EXPECT_EQ(r["numeric"], true);
  EXPECT_EQ(r["printed"], "table:") << "tostring names it a table, as any table";
  EXPECT_EQ(r["list"], "table:");
}

// Every way a script can look at a table raw sees all of its fields, untouched or not.
TEST(LuaJson, RawAccessSeesEveryField) {
  auto vm = make(R"(
    function f(r)
      local first_key = next(r)
      local rset = rawset(r.obj, "x", 1)
      return { has_next = first_key ~= nil, rawget = rawget(r, "user"), rawlen = rawlen(r.messages),
               rawset = rawget(r.obj, "x"), same = rset == r.obj, role = rawget(rawget(r.messages, 2), "role") }
    end)");
  json r = call_with(*vm, kRequest);
  EXPECT_EQ(r["has_next"], true);
  EXPECT_EQ(r["rawget"], "u1");
  EXPECT_EQ(r["rawlen"], 2);
  EXPECT_EQ(r["rawset"], 1);
  EXPECT_EQ(r["same"], true);
  EXPECT_EQ(r["role"], "user");
}

TEST(LuaJson, ChangesAndRemovalsAreWhatEncodes) {
  auto vm = make(R"(
    function f(r)
      r.model = "other"                 -- replaced before it was read
      r.n = nil                         -- removed before it was read
      local t = r.t
      r.t = nil                         -- removed after it was read
      assert(r.t == nil and r.n == nil, "a removed field stays removed")
      r.messages[1].content = "changed"
      table.insert(r.messages, { role = "user", content = "c" })
      r.added = { 1, 2 }
      r.none = nil
    end)");
  json out = changed_by(*vm, kRequest);
  json want = json::parse(kRequest);
  want["model"] = "other";
  want.erase("n");
  want.erase("t");
  want.erase("none");
  want["messages"][0]["content"] = "changed";
  want["messages"].push_back({{"role", "user"}, {"content", "c"}});
  want["added"] = {1, 2};
  want["big"] = 18446744073709551615.0;
  EXPECT_EQ(out, want);
}

TEST(LuaJson, UntouchedAndFilledTablesEncodeTheSame) {
  auto vm = make(R"(
    function walk(x)
      if type(x) == "table" then for _, v in pairs(x) do walk(v) end end
    end
    function f(r) end
    function g(r) walk(r) end
    function h(r) return plexus.json_decode(plexus.json_encode(r)) end)");
  json want = json::parse(kRequest);
  want["big"] = 18446744073709551615.0;
  EXPECT_EQ(changed_by(*vm, kRequest), want);
  json walked;
  vm->run([&](lua_State* L) {
    push_json_text(L, kRequest);
    int arg = lua_gettop(L);
    vm->push_global_function("g");
    lua_pushvalue(L, arg);
    vm->call(1, 0);
    walked = to_json(L, arg);
  });
  EXPECT_EQ(walked, want);
  EXPECT_EQ(call_with(*vm, kRequest, "h"), want) << "plexus.json_encode of a lazy table";
  EXPECT_EQ(call_with(*vm, R"({"a":[],"b":{},"c":[[],{}]})", "h"), json::parse(R"({"a":[],"b":{},"c":[[],{}]})"));
}

TEST(LuaJson, ArraysChangeAsPlainListsDo) {
  auto vm = make(R"(
    function f(r)
      local m = r.messages
      assert(m[1.0].role == "system" and m["1"] == nil and m[0] == nil and m[3] == nil)
      table.insert(m, 1, { role = "system", content = "first" })
      table.insert(m, { role = "user", content = "last" })
      assert(#m == 4)
      table.remove(m, 2)
      r.empty[#r.empty + 1] = "x"
      local list = r.list
      list[#list] = nil            -- the last element removed before it was read
      assert(#list == 2 and list[3] == nil, "a removed element stays removed")
      list[2] = nil                -- a hole
    end)");
  json out = changed_by(*vm, R"({"messages":[{"role":"system","content":"a"},{"role":"user","content":"b"}],"empty":[],"list":[1,2,3]})");
  EXPECT_EQ(out["messages"], json::parse(R"([{"role":"system","content":"first"},{"role":"user","content":"b"},{"role":"user","content":"last"}])"));
  EXPECT_EQ(out["empty"], json::parse(R"(["x"])"));
  EXPECT_EQ(out["list"], json::parse("[1]")) << "a hole at the end shortens the list, as # sees it";
}

// `#` and reading one element of a long list make nothing of the other elements.
TEST(LuaJson, TheLengthOfALongListCostsNothing) {
  std::string text = R"({"messages":[)";
  for (int i = 0; i < 100000; ++i) text += (i ? "," : "") + std::string(R"({"role":"user","content":"m)") + std::to_string(i) + "\"}";
  text += "]}";
  auto vm = make("function f(r) return { n = #r.messages, last = r.messages[#r.messages].content } end",
                 {std::chrono::milliseconds(100), 64u << 20});
  std::size_t box = 0, after = 0;
  json out;
  vm->run([&](lua_State* L) {
    std::size_t before = vm->memory_in_use();
    push_json_text(L, text);
    box = vm->memory_in_use() - before;
    int arg = lua_gettop(L);
    vm->push_global_function("f");
    lua_pushvalue(L, arg);
    vm->call(1, 1);
    after = vm->memory_in_use() - before;
    out = to_json(L, -1);
  });
  EXPECT_EQ(out, json::parse(R"({"n":100000,"last":"m99999"})"));
  EXPECT_LT(after - box, 16u * 1024) << "a few tables, not one per message";
}

TEST(LuaJson, ARepeatedKeyKeepsTheLastValueEveryWay) {
  auto vm = make(R"(
    function f(r) return { read = r.k } end
    function g(r) local n = 0 for k, v in pairs(r) do n = n + 1 end return { n = n, k = r.k } end
    function h(r) r.k = nil return { gone = r.k == nil, other = r.o } end)");
  const std::string text = R"({"k":1,"o":2,"k":3})";
  EXPECT_EQ(call_with(*vm, text)["read"], 3);
  EXPECT_EQ(call_with(*vm, text, "g"), json::parse(R"({"n":2,"k":3})"));
  EXPECT_EQ(call_with(*vm, text, "h"), json::parse(R"({"gone":true,"other":2})")) << "both copies removed";
  EXPECT_EQ(changed_by(*vm, text), json::parse(R"({"k":3,"o":2})"));
}

TEST(LuaJson, AWideObjectIsFilledWhole) {
  json wide = json::object();
  for (int i = 0; i < 40; ++i) wide["k" + std::to_string(i)] = i;
  auto vm = make(R"(
    function f(r)
      r.k3 = nil
      r.k39 = "x"
      return { k0 = r.k0, k3 = r.k3 == nil }
    end)");
  EXPECT_EQ(call_with(*vm, wide.dump()), json::parse(R"({"k0":0,"k3":true})"));
  json want = wide;
  want.erase("k3");
  want["k39"] = "x";
  EXPECT_EQ(changed_by(*vm, wide.dump()), want);
}

// An object a script empties and fills as a list is a list, as it was when decoded whole.
TEST(LuaJson, AnEmptiedObjectRefilledAsAListEncodesAsAList) {
  auto vm = make("function f(r) r.a = nil r.b = nil r[1] = 'x' r[2] = 'y' end");
  EXPECT_EQ(changed_by(*vm, R"({"a":1,"b":2})"), json::parse(R"(["x","y"])"));
}

TEST(LuaJson, SetmetatableKeepsTheFields) {
  auto vm = make(R"(
    function f(r)
      setmetatable(r, { __index = function() return "default" end })
      return { model = r.model, other = r.other, count = #r.messages }
    end)");
  EXPECT_EQ(call_with(*vm, kRequest), json::parse(R"({"model":"m","other":"default","count":2})"));
}

TEST(LuaJson, ScalarDocuments) {
  auto vm = make("function f(x) return { x = x, null = x == plexus.null } end");
  EXPECT_EQ(call_with(*vm, "5")["x"], 5);
  EXPECT_EQ(call_with(*vm, R"("s")")["x"], "s");
  EXPECT_EQ(call_with(*vm, "true")["x"], true);
  EXPECT_EQ(call_with(*vm, "null")["null"], true);
}

// A hook may keep what it got (in a global, in ctx.state): the document lives as long as a table
// that reads from it, through any number of collections.
TEST(LuaJson, ATableKeptPastItsCallStillReads) {
  auto vm = make(R"(
    function f(r) kept = r.messages[2] end
    function g() return kept.content end)");
  call_with(*vm, kRequest);
  for (int i = 0; i < 3; ++i) lua_gc(vm->state(), LUA_GCCOLLECT);
  // Other documents in between reuse the thread's index buffers.
  call_with(*vm, R"({"messages":[{"content":"zzzz"},{"content":"yyyy"}]})", "f");
  vm->push_global_function("g");
  vm->call(0, 1);
  EXPECT_STREQ(lua_tostring(vm->state(), -1), "yyyy");
  lua_settop(vm->state(), 0);
}

// Only what a script reads becomes Lua values: a document is about its own size in the state.
TEST(LuaJson, ADocumentCostsAboutItsSizeAndIsCollected) {
  std::string text = R"({"user":"u","messages":[)";
  for (int i = 0; i < 200; ++i) text += (i ? "," : "") + std::string(R"({"role":"user","content":")") + std::string(500, 'a') + "\"}";
  text += "]}";
  auto vm = make("function f(r) return r.user end", {std::chrono::milliseconds(100), 4u << 20});
  lua_gc(vm->state(), LUA_GCCOLLECT);
  std::size_t before = vm->memory_in_use();
  std::size_t during = 0;
  vm->run([&](lua_State* L) {
    push_json_text(L, text);
    during = vm->memory_in_use();
  });
  EXPECT_LT(during - before, text.size() * 3 / 2) << "an index of the text, not a table per message";
  lua_gc(vm->state(), LUA_GCCOLLECT);
  EXPECT_LT(vm->memory_in_use(), before + 4096) << "collected with its last table";
}

TEST(LuaJson, ADocumentOverTheMemoryCapIsAnErrorNotAPanic) {
  auto vm = make("function f(r) return r end", {std::chrono::milliseconds(100), 1u << 20});
  std::string text = "[";
  for (int i = 0; i < 20000; ++i) text += (i ? ",\"" : "\"") + std::string(100, 'x') + "\"";
  text += "]";
  try {
    vm->run([&](lua_State* L) { push_json_text(L, text); });
    FAIL() << "2 MB of text fit in a 1 MiB state";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("not enough memory"), std::string::npos) << e.what();
  }
  EXPECT_EQ(call_with(*vm, R"({"ok":true})")["ok"], true) << "the state is still usable";
}

// Nesting as deep as the parser takes decodes (a level is made only when read); encoding stops
// at 64 levels, cleanly.
TEST(LuaJson, DeepDocumentsDecodeAndRefuseToEncodeCleanly) {
  auto vm = make("function f(r) local x = r for i = 1, 500 do x = x[1] end return type(x) end");
  std::string deep = std::string(600, '[') + std::string(600, ']');
  EXPECT_EQ(call_with(*vm, deep), "table");
  auto echo = make("function f(r) return r end");
  try {
    call_with(*echo, deep);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("nesting deeper than 64"), std::string::npos) << e.what();
  }
}

TEST(LuaJson, TextThatIsNotJsonIsRefused) {
  auto vm = make("function f(r) return r end");
  bool pushed = true;
  vm->run([&](lua_State* L) { pushed = push_json_text(L, "{\"a\":"); });
  EXPECT_FALSE(pushed);
}

}  // namespace
}  // namespace plexus::lua
