// The Lua sandbox's promises, checked directly on a VM.
#include "plugins/lua/lua_json.hpp"
#include "plugins/lua/lua_vm.hpp"

#include <gtest/gtest.h>
#include <lua.hpp>
#include <nlohmann/json.hpp>

#include <chrono>

namespace plexus::lua {
namespace {

// 5 ms of CPU per call: a loop is stopped within 5 ms plus one watchdog tick (1.25 ms) of CPU.
const Limits kSmallBudget{std::chrono::milliseconds(5), 8u << 20};

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
  auto vm = make("function f() while true do end end function g() return 42 end", kSmallBudget);
  ASSERT_TRUE(vm->push_global_function("f"));
  try {
    vm->call(0, 0);
    FAIL() << "the loop ran forever";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("CPU time budget exceeded"), std::string::npos) << e.what();
  }
  ASSERT_TRUE(vm->push_global_function("g"));
  vm->call(0, 1);
  EXPECT_EQ(lua_tointeger(vm->state(), -1), 42);
}

// Calls global `fn`, which must fail on the CPU time budget in bounded time, and checks that
// the state still runs g(). The scripts below catch whatever the budget raises and loop again: if
// the budget could be caught, they would hang here.
void expect_budget_stops(Vm& vm, const char* fn) {
  auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(vm.push_global_function(fn));
  try {
    vm.call(0, 0);
    ADD_FAILURE() << fn << " returned";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("CPU time budget exceeded"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5)) << fn;
  EXPECT_EQ(lua_gethookmask(vm.state()), 0) << "no hook is left to slow the next call";
  ASSERT_TRUE(vm.push_global_function("g"));
  vm.call(0, 1);
  EXPECT_EQ(lua_tointeger(vm.state(), -1), 42) << "the state is usable after " << fn;
  lua_settop(vm.state(), 0);
}

constexpr const char* kUsable = "function g() return 42 end ";

TEST(LuaSandbox, PcallCannotCatchASpentBudget) {
  auto vm = make(std::string(kUsable) + "function f() while true do pcall(function() while true do end end) end end",
                 kSmallBudget);
  expect_budget_stops(*vm, "f");
  expect_budget_stops(*vm, "f");  // the budget is armed afresh for every call
  try {  // the way the plugin calls hooks: call() inside run()
    vm->run([&](lua_State*) {
      ASSERT_TRUE(vm->push_global_function("f"));
      vm->call(0, 0);
    });
    FAIL() << "f returned";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("CPU time budget exceeded"), std::string::npos) << e.what();
  }
}

TEST(LuaSandbox, XpcallCannotCatchASpentBudgetEvenWithALoopingHandler) {
  // h: a handler that loops. k: the budget runs out under a C call, where the hook raises; Lua's
  // own xpcall would then run the handler with hooks still off, forever.
  auto vm = make(std::string(kUsable) + R"(
    local function spin() while true do end end
    function f() while true do xpcall(spin, function(e) return e end) end end
    function h() while true do xpcall(error, spin) end end
    function k() while true do xpcall(table.sort, spin, {3, 2, 1}, spin) end end)",
                 kSmallBudget);
  expect_budget_stops(*vm, "f");
  expect_budget_stops(*vm, "h");
  expect_budget_stops(*vm, "k");
}

TEST(LuaSandbox, XpcallStillHandlesErrors) {
  auto vm = make(R"(
    function f()
      local ok, e = xpcall(function() error("x", 0) end, function(m) return "handled " .. m end)
      local ok2, sum = xpcall(function(a, b) return a + b end, print, 1, 2)
      local ok3, e3 = xpcall(error, function() error("again", 0) end, "first", 0)
      return { ok = ok, e = e, ok2 = ok2, sum = sum, ok3 = ok3, e3 = e3,
               no_handler = select(2, pcall(xpcall, print)) }
    end)");
  auto r = call_f(*vm);
  EXPECT_EQ(r["ok"], false);
  EXPECT_EQ(r["e"], "handled x");
  EXPECT_EQ(r["ok2"], true);
  EXPECT_EQ(r["sum"], 3);
  EXPECT_EQ(r["ok3"], false);
  EXPECT_EQ(r["e3"], "error in error handling");
  EXPECT_NE(r["no_handler"].get<std::string>().find("bad argument #2 to 'xpcall'"), std::string::npos) << r;
}

TEST(LuaSandbox, RethrowingTheBudgetErrorDoesNotRestartTheBudget) {
  auto vm = make(std::string(kUsable) + R"(
    function f()
      while true do
        pcall(function()
          local ok, e = pcall(function() while true do end end)
          error(e, 0)
        end)
      end
    end)",
                 kSmallBudget);
  expect_budget_stops(*vm, "f");
}

TEST(LuaSandbox, ABudgetSpentUnderACCallCannotBeCaughtEither) {
  // The comparator runs under table.sort (C), where the hook cannot yield, only raise; the
  // script's pcall catches that, and the next instruction must end the call.
  auto vm = make(std::string(kUsable) + R"(
    function f()
      while true do pcall(table.sort, {3, 2, 1}, function(a, b) while true do end end) end
    end
    function h()
      while true do pcall(tostring, setmetatable({}, {__tostring = function() while true do end end})) end
    end)",
                 kSmallBudget);
  expect_budget_stops(*vm, "f");
  expect_budget_stops(*vm, "h");
}

TEST(LuaSandbox, ScriptCodeTheHostRunsDirectlyIsBoundedToo) {
  // A metamethod the host's C++ triggers while reading results runs on the main thread, outside
  // the coroutine: there the hook can only raise, and must keep raising.
  auto vm = make(std::string(kUsable) + R"(
    function f()
      return setmetatable({}, {__index = function()
        while true do pcall(function() while true do end end) end
      end})
    end)",
                 kSmallBudget);
  try {
    vm->run([&](lua_State* L) {
      ASSERT_TRUE(vm->push_global_function("f"));
      vm->call(0, 1);
      lua_getfield(L, -1, "score");
    });
    FAIL() << "the __index loop returned";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("CPU time budget exceeded"), std::string::npos) << e.what();
  }
  ASSERT_TRUE(vm->push_global_function("g"));
  vm->call(0, 1);
  EXPECT_EQ(lua_tointeger(vm->state(), -1), 42);
}

// The host's conversions (a large request into tables) are not the script's: a cheap script is
// not failed by them, and the script code after them still has its budget.
TEST(LuaSandbox, TheHostsOwnWorkIsNotChargedToTheScript) {
  auto vm = make(std::string(kUsable) + "function f() while true do end end", kSmallBudget);
  auto host_work = [] {  // 10 budgets' worth of the host's CPU
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
    while (std::chrono::steady_clock::now() < until) {
    }
  };
  vm->run([&](lua_State* L) {
    {
      Vm::HostWork host(*vm);
      host_work();
    }
    ASSERT_TRUE(vm->push_global_function("g"));
    vm->call(0, 1);
    EXPECT_EQ(lua_tointeger(L, -1), 42);
  });
  try {
    vm->run([&](lua_State*) {
      {
        Vm::HostWork host(*vm);
        host_work();
      }
      ASSERT_TRUE(vm->push_global_function("f"));
      vm->call(0, 0);
    });
    FAIL() << "f returned";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("CPU time budget exceeded"), std::string::npos) << e.what();
  }
}

TEST(LuaSandbox, ScriptsHaveNoCoroutinesToCatchTheBudgetYield) {
  // The budget ends a call by yielding out of the coroutine the host resumes; a coroutine of the
  // script's own would receive that yield instead (coroutine.resume returns true, the loop goes on).
  auto vm = make("function f() return type(coroutine) end");
  EXPECT_EQ(call_f(*vm), "nil");
}

TEST(LuaSandbox, ToBeClosedVariablesAreClosedOnAnErrorButBoundedByTheBudget) {
  auto vm = make(std::string(kUsable) + R"(
    closed = 0
    function f()
      local x <close> = setmetatable({}, {__close = function() closed = closed + 1 end})
      error("boom")
    end
    function count() return closed end
    function h()
      local x <close> = setmetatable({}, {__close = function() while true do end end})
      error("boom")
    end)",
                 kSmallBudget);
  ASSERT_TRUE(vm->push_global_function("f"));
  EXPECT_THROW(vm->call(0, 0), std::runtime_error);
  ASSERT_TRUE(vm->push_global_function("count"));
  vm->call(0, 1);
  EXPECT_EQ(lua_tointeger(vm->state(), -1), 1) << "__close ran, as under lua_pcall";
  lua_settop(vm->state(), 0);
  expect_budget_stops(*vm, "h");
}

TEST(LuaSandbox, FinalizersAreRefusedSoClosingTheStateCannotHang) {
  // __gc runs with hooks off, so the budget cannot stop it; lua_close would run this one forever.
  try {
    make("setmetatable({}, {__gc = function() while true do end end})");
    FAIL() << "a __gc metatable was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("__gc"), std::string::npos) << e.what();
  }
}

TEST(LuaSandbox, NoFinalizerRunsWhenManyAreAttemptedAndTheStateCloses) {
  auto started = std::chrono::steady_clock::now();
  auto vm = make(R"(
    local function spin() while true do end end
    refused = 0
    kept = {}
    local late = {}
    for i = 1, 1000 do
      if not pcall(setmetatable, {}, {__gc = spin}) then refused = refused + 1 end
      if not pcall(setmetatable, {}, {__gc = true}) then refused = refused + 1 end  -- could be swapped later
      kept[i] = setmetatable({}, late)
    end
    late.__gc = spin  -- too late: the objects were not marked for finalization
    function f()
      kept = nil
      local t = {}
      for i = 1, 100000 do t[i % 100] = {} end  -- enough garbage for the collector to run
      return { refused = refused, late_refused = not pcall(setmetatable, {}, late) }
    end)",
                 {std::chrono::seconds(1), 8u << 20});
  auto r = call_f(*vm);
  EXPECT_EQ(r["refused"], 2000);
  EXPECT_EQ(r["late_refused"], true);
  vm.reset();  // lua_close: it would run every marked finalizer, with no budget
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
}

TEST(LuaSandbox, AMemoryBombHitsTheCapAndTheStateStaysUsable) {
  auto vm = make("function f() local t = {} for i = 1, 1e8 do t[i] = ('x'):rep(100) .. i end end "
                 "function g() return ('y'):rep(1e9) end function h() return 7 end",
                 {std::chrono::seconds(10), 4u << 20});
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
  auto vm = make("function f(x) return x end", {std::chrono::milliseconds(100), 1u << 20});
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

namespace plexus::lua {
namespace {

TEST(LuaSandbox, PlainFindKeepsStringFindSemantics) {
  auto vm = make(R"(
    function f()
      local s = "hello world, hello"
      local a, b = string.find(s, "hello", 2)
      local c, d = s:find("", 4)
      return { a, b, c, d, string.find(s, "hello", -5), string.find(s, "xyz") == nil,
               string.find(s, "h", 100) == nil, (string.find(s, "h", -100)) }
    end)");
  auto r = call_f(*vm);
  EXPECT_EQ(r, nlohmann::json::parse("[14, 18, 4, 3, 14, true, true, 1]"));
}

TEST(LuaSandbox, FindAnyFindsTheFirstByteOfASet) {
  auto vm = make(R"(
    function f()
      local s = "call 555-0100 or mail a@b.c"
      return { plexus.find_any(s, "0123456789"), plexus.find_any(s, "@"), plexus.find_any(s, "0123456789", 9),
               plexus.find_any(s, "xyz") == nil, plexus.find_any(s, "") == nil, plexus.find_any("", "a") == nil,
               plexus.find_any(s, "l", -7), plexus.find_any(s, "c", 100) == nil, plexus.find_any(s, "c", -100) }
    end)");
  EXPECT_EQ(call_f(*vm), nlohmann::json::parse("[6, 24, 10, true, true, true, 21, true, 1]"));
}

// FNV-1a 32, as the published vectors give it, and carried on from a seed.
TEST(LuaSandbox, HashIsFnv1aAndCarriesOn) {
  auto vm = make(R"(
    function f()
      return { plexus.hash(""), plexus.hash("a"), plexus.hash("foobar"),
               plexus.hash("bar", plexus.hash("foo")) == plexus.hash("foobar") }
    end)");
  EXPECT_EQ(call_f(*vm), nlohmann::json::parse("[2166136261, 3826002220, 3214735720, true]"));
}

// A search that Lua's own plain find would run for minutes inside one C call (where the
// CPU time budget cannot reach): haystack times needle comparisons. The sandbox's is linear.
TEST(LuaSandbox, PlainFindCannotBeMadeQuadratic) {
  auto vm = make(R"(
    function f()
      local hay = string.rep("a", 4 * 1024 * 1024)
      local needle = string.rep("a", 1024 * 1024) .. "b"
      return { string.find(hay, needle, 1, true) == nil, (string.find(hay .. "b", needle)) }
    end)", {std::chrono::seconds(1), 64u << 20});
  auto r = call_f(*vm);
  EXPECT_EQ(r[0], true);
  EXPECT_EQ(r[1], 3 * 1024 * 1024 + 1);
}

}  // namespace
}  // namespace plexus::lua
