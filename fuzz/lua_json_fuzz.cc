// Request and chunk JSON into a Lua plugin's state and back: never a crash or a panic (every
// failure inside Vm::run is an exception), and the round trip is stable. The text path the hooks
// use (push_json_text, simdjson) must give the same tables as the document path (push_json).
#include <lua.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>

#include "plugins/lua/lua_vm.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(bytes), size);
  auto in = nlohmann::json::parse(text, nullptr, false);
  static auto vm = std::make_unique<plexus::lua::Vm>("fuzz.lua", "function f(x) return x end", "{}",
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
  try {
    auto once = round_trip(in);
    auto twice = round_trip(once);
    if (once != twice) __builtin_trap();
  } catch (const std::runtime_error&) {
    // too deep, too big: refused cleanly
  }
  return 0;
}
