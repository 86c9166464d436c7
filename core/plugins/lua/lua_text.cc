#include "plugins/lua/lua_text.hpp"

#include <lua.hpp>

#include <bitset>
#include <cstdint>
#include <cstring>

namespace plexus::lua {
namespace {

constexpr std::uint32_t kFnvOffset = 2166136261u;
constexpr std::uint32_t kFnvPrime = 16777619u;

// Where string.find starts for `pos` in a string of `len` bytes (Lua's posrelatI): 1-based; a
// negative one counts from the end; 0 and anything before the start mean 1.
std::size_t start_of(lua_Integer pos, std::size_t len) {
  if (pos > 0) return static_cast<std::size_t>(pos);
  if (pos == 0 || pos < -static_cast<lua_Integer>(len)) return 1;
  return len + static_cast<std::size_t>(pos) + 1;
}

}  // namespace

// string.find in plain mode only. Lua's pattern matcher runs in C, where the count hook cannot
// stop it (a crafted pattern ran 28 s in the spike), so find/match/gmatch/gsub are taken out of
// the real string table (method calls on strings reach it too) and find survives as plain. Not
// Lua's own plain search either: it compares naively, haystack times needle, which a script
// can make last minutes inside one C call (1 MiB against a 256 KiB needle: 2 s). glibc's memmem
// is linear (two-way algorithm). Same arguments and results as string.find(s, p, init, true).
int plain_find(lua_State* L) {
  std::size_t ls = 0, lp = 0;
  const char* s = luaL_checklstring(L, 1, &ls);
  const char* p = luaL_checklstring(L, 2, &lp);
  std::size_t init = start_of(luaL_optinteger(L, 3, 1), ls);
  if (init - 1 > ls) {
    luaL_pushfail(L);
    return 1;
  }
  const void* at = lp == 0 ? s + init - 1 : memmem(s + init - 1, ls - (init - 1), p, lp);
  if (!at) {
    luaL_pushfail(L);
    return 1;
  }
  auto start = static_cast<lua_Integer>(static_cast<const char*>(at) - s) + 1;
  lua_pushinteger(L, start);
  lua_pushinteger(L, start + static_cast<lua_Integer>(lp) - 1);
  return 2;
}

namespace {

int find_any(lua_State* L) {
  std::size_t len = 0, set_len = 0;
  const char* s = luaL_checklstring(L, 1, &len);
  const char* set = luaL_checklstring(L, 2, &set_len);
  std::size_t from = start_of(luaL_optinteger(L, 3, 1), len);
  const char* found = nullptr;
  if (from <= len && set_len == 1) {
    found = static_cast<const char*>(std::memchr(s + from - 1, set[0], len - (from - 1)));
  } else if (from <= len && set_len > 1) {
    std::bitset<256> in_set;
    for (std::size_t i = 0; i < set_len; ++i) in_set.set(static_cast<unsigned char>(set[i]));
    for (std::size_t i = from - 1; i < len && !found; ++i)
      if (in_set.test(static_cast<unsigned char>(s[i]))) found = s + i;
  }
  if (!found) {
    luaL_pushfail(L);
    return 1;
  }
  lua_pushinteger(L, static_cast<lua_Integer>(found - s) + 1);
  return 1;
}

int hash(lua_State* L) {
  std::size_t len = 0;
  const char* s = luaL_checklstring(L, 1, &len);
  auto h = static_cast<std::uint32_t>(luaL_optinteger(L, 2, kFnvOffset));
  for (std::size_t i = 0; i < len; ++i) h = (h ^ static_cast<unsigned char>(s[i])) * kFnvPrime;
  lua_pushinteger(L, static_cast<lua_Integer>(h));
  return 1;
}

}  // namespace

void register_text(lua_State* L, int plexus_table) {
  lua_pushcfunction(L, find_any);
  lua_setfield(L, plexus_table, "find_any");
  lua_pushcfunction(L, hash);
  lua_setfield(L, plexus_table, "hash");
}

}  // namespace plexus::lua
