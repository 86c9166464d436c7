// Request and chunk JSON into a Lua plugin's state and back: never a crash or a panic (every
// failure inside Vm::run is an exception), and the round trip is stable. The text path the hooks
// use (push_json_text: lazy tables over simdjson) must encode as the document path (push_json)
// does, whether the script left the tables untouched, walked all of them, or read and removed
// a few fields and elements.
#include <lua.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>

#include "plugins/lua/lua_json.hpp"
#include "plugins/lua/lua_vm.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(bytes), size);
  auto in = nlohmann::json::parse(text, nullptr, false);
  static auto vm = std::make_unique<plexus::lua::Vm>("fuzz.lua", R"(
    function f(x) return x end
    function walk(x, depth)
      if type(x) == "table" and depth < 70 then for _, v in pairs(x) do walk(v, depth + 1) end end
    end
    function poke(x, depth)
      if type(x) == "table" and depth < 70 then
        local _ = x.a
        x.b = nil
        if x.c ~= nil then poke(x.c, depth + 1) end
        local n = #x   -- 0 for an object
        if n > 0 then
          x[n] = nil
          poke(x[1], depth + 1)
        end
      end
    end)", "{}",
                                                     plexus::lua::Limits{std::chrono::milliseconds(100), 4u << 20},
                                                     [](int, const std::string&) {});
  auto round_trip = [](const nlohmann::json& v) {
    nlohmann::json out;
    vm->run([&](lua_State* L) {
      vm->push_global_function("f");
      plexus::lua::push_json(L, v);
      lua_call(L, 1, 1);
      out = plexus::lua::to_json(L, -1);
    });
    return out;
  };
  // simdjson refuses some documents nlohmann takes (integers beyond 64 bits, depth past 1,024):
  // only compare where both read the text.
  try {
    nlohmann::json from_text;
    bool parsed = false;
    vm->run([&](lua_State* L) {
      parsed = plexus::lua::push_json_text(L, text);
      if (parsed) from_text = plexus::lua::to_json(L, -1);
    });
    if (parsed && in.is_discarded()) __builtin_trap();  // simdjson took what nlohmann refused
    if (parsed && from_text != round_trip(in)) __builtin_trap();
  } catch (const std::runtime_error&) {
  }
  if (in.is_discarded()) return 0;
  // What poke does, on the document.
  std::function<void(nlohmann::json&, int)> poke = [&](nlohmann::json& v, int depth) {
    if (depth >= 70) return;
    if (v.is_object()) {
      v.erase("b");
      if (v.contains("c")) poke(v["c"], depth + 1);
    } else if (v.is_array() && !v.empty()) {
      v.erase(v.size() - 1);
      if (!v.empty()) poke(v[0], depth + 1);
    }
  };
  for (const char* script : {"walk", "poke"}) {
    try {
      nlohmann::json changed;
      bool parsed = false;
      vm->run([&](lua_State* L) {
        parsed = plexus::lua::push_json_text(L, text);
        if (!parsed) return;
        int arg = lua_gettop(L);
        vm->push_global_function(script);
        lua_pushvalue(L, arg);
        lua_pushinteger(L, 0);
        vm->call(2, 0);
        changed = plexus::lua::to_json(L, arg);
      });
      if (!parsed) continue;
      nlohmann::json want = round_trip(in);
      if (std::string_view(script) == "poke") poke(want, 0);
      if (changed != want) __builtin_trap();
    } catch (const std::runtime_error&) {
      // too deep to encode: refused cleanly
    }
  }
  try {
    auto once = round_trip(in);
    auto twice = round_trip(once);
    if (once != twice) __builtin_trap();
  } catch (const std::runtime_error&) {
    // too deep, too big: refused cleanly
  }
  return 0;
}
