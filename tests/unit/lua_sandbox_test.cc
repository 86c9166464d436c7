// The Lua sandbox's promises, checked directly on a VM.
#include "plugins/lua/lua_vm.hpp"

#include <gtest/gtest.h>
#include <lua.hpp>
#include <nlohmann/json.hpp>

namespace plexus::lua {
namespace {

std::unique_ptr<Vm> make(const std::string& src, Limits limits = {}) {
  return std::make_unique<Vm>("test.lua", src, R"({"k":[1,2]})", limits, [](int, const std::string&) {});
}

// Calls global f() and returns its result as JSON.
nlohmann::json call_f(Vm& vm) {
  EXPECT_TRUE(vm.push_global_function("f"));
  vm.call(0, 1);
  auto out = to_json(vm.state(), -1);
  lua_settop(vm.state(), 0);
  return out;
}

TEST(LuaSandbox, NothingReachesTheOutside) {
  auto vm = make(R"(
    function f()
      return { io = type(io), osexec = type(os.execute), getenv = type(os.getenv), require = type(require),
               load = type(load), loadstring = type(loadstring), dofile = type(dofile), debug = type(debug),
               gsub = type(string.gsub), match = type(string.match), method_gsub = type(("x").gsub),
               getmetatable = type(getmetatable), time = type(os.time), clock = type(os.clock),
               plain = string.find("a.b", ".", 1), config = plexus.config.k[2] }
    end)");
  auto r = call_f(*vm);
  for (const char* k : {"io", "osexec", "getenv", "require", "load", "loadstring", "dofile", "debug", "gsub",
                        "match", "method_gsub", "getmetatable"})
    EXPECT_EQ(r[k], "nil") << k;
  EXPECT_EQ(r["time"], "function");
  EXPECT_EQ(r["clock"], "function");
  EXPECT_EQ(r["plain"], 2) << "find is plain: '.' is a dot, not any character";
  EXPECT_EQ(r["config"], 2);
}

TEST(LuaSandbox, AnInfiniteLoopIsStoppedAndTheStateStaysUsable) {
  auto vm = make("function f() while true do end end function g() return 42 end", {100000, 8u << 20});
  ASSERT_TRUE(vm->push_global_function("f"));
  try {
    vm->call(0, 0);
    FAIL() << "the loop ran forever";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("instruction budget exceeded"), std::string::npos) << e.what();
  }
  ASSERT_TRUE(vm->push_global_function("g"));
  vm->call(0, 1);
  EXPECT_EQ(lua_tointeger(vm->state(), -1), 42);
}

TEST(LuaSandbox, AMemoryBombHitsTheCapAndTheStateStaysUsable) {
  auto vm = make("function f() local t = {} for i = 1, 1e8 do t[i] = ('x'):rep(100) .. i end end "
                 "function g() return ('y'):rep(1e9) end function h() return 7 end",
                 {1000000000, 4u << 20});
  for (const char* fn : {"f", "g"}) {
    ASSERT_TRUE(vm->push_global_function(fn));
    try {
      vm->call(0, 0);
      FAIL() << fn << " allocated without limit";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("not enough memory"), std::string::npos) << e.what();
    }
  }
  EXPECT_LE(vm->memory_in_use(), 4u << 20);
  ASSERT_TRUE(vm->push_global_function("h"));
  vm->call(0, 1);
  EXPECT_EQ(lua_tointeger(vm->state(), -1), 7);
}

TEST(LuaSandbox, BytecodeAndSyntaxErrorsAreRefusedWithTheLine) {
  EXPECT_THROW(make(std::string("\x1bLua\x54\x00", 6)), std::runtime_error);
  try {
    make("function f()\n  return 1 +\nend");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("test.lua:3:"), std::string::npos) << e.what();
  }
}

TEST(LuaSandbox, JsonRoundTripKeepsArraysObjectsAndNull) {
  auto vm = make("function f(x) return x end");
  auto in = nlohmann::json::parse(R"({"choices":[],"o":{},"n":null,"a":[1,"two",{"b":false}],"f":1.5,"big":18446744073709551615})");
  nlohmann::json out;
  vm->run([&](lua_State* L) {
    ASSERT_TRUE(vm->push_global_function("f"));
    push_json(L, in);
    lua_call(L, 1, 1);
    out = to_json(L, -1);
  });
  EXPECT_EQ(out["choices"], nlohmann::json::array());
  EXPECT_EQ(out["a"], in["a"]);
  EXPECT_TRUE(out["n"].is_null());
  EXPECT_EQ(out["f"], 1.5);
  EXPECT_DOUBLE_EQ(out["big"].get<double>(), 18446744073709551615.0) << "beyond int64: a float, not a wrapped integer";
  auto vm2 = make("function f() return plexus.json_decode(plexus.json_encode({x = {1, 2}, y = plexus.null})) end");
  auto r = call_f(*vm2);
  EXPECT_EQ(r["x"], nlohmann::json::array({1, 2}));
  EXPECT_TRUE(r["y"].is_null());
}

TEST(LuaSandbox, MarshallingFailuresInsideRunAreErrorsNotPanics) {
  auto vm = make("function f(x) return x end", {1000000, 1u << 20});
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  auto nested = nlohmann::json::parse(deep);
  EXPECT_THROW(vm->run([&](lua_State* L) { push_json(L, nested); }), std::runtime_error);
  auto huge = nlohmann::json::array();
  for (int i = 0; i < 20000; ++i) huge.push_back(std::string(100, 'x') + std::to_string(i));
  try {
    vm->run([&](lua_State* L) { push_json(L, huge); });
    FAIL() << "2 MB of strings fit in a 1 MiB state";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("not enough memory"), std::string::npos) << e.what();
  }
  nlohmann::json back;
  vm->run([&](lua_State* L) {
    push_json(L, nlohmann::json{{"ok", true}});
    back = to_json(L, -1);
  });
  EXPECT_EQ(back["ok"], true) << "the state is still usable";
}

}  // namespace
}  // namespace plexus::lua
