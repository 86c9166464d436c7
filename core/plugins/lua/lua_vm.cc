#include "plugins/lua/lua_vm.hpp"

#include <lua.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <utility>

#include "plugins/lua/cpu_watchdog.hpp"
#include "plugins/lua/lua_extras.hpp"
#include "plugins/lua/lua_json.hpp"
#include "plugins/lua/lua_text.hpp"

namespace plexus::lua {
namespace {

using nlohmann::json;

}  // namespace

struct Budget {
  std::chrono::microseconds limit{0};
  lua_State* main = nullptr;
  bool armed = false;  // a host entry (run, or call outside run) is in progress
  // Set by the CPU watchdog's signal handler, on this state's thread, when the call has used its
  // CPU time. Read by the count hook, which that handler installs.
  std::atomic<bool> spent{false};
  // The coroutine the host is resuming: a yield from it returns to the host.
  lua_State* resumed = nullptr;
  // The coroutine script code runs on for the host: the one resumed, and also the one whose
  // pending <close> variables the host closes after an error. The signal handler sets the count
  // hook there; null: the main state.
  std::atomic<lua_State*> running{nullptr};
  // The coroutine hooks run in, kept from call to call (anchored in the registry): a new one per
  // call cost an allocation and, later, its collection.
  lua_State* spare = nullptr;
  int spare_ref = LUA_NOREF;
  bool spare_busy = false;
  // The watchdog's arming while a host entry runs, except during the host's own conversions
  // (Vm::HostWork).
  std::optional<CpuBudgetScope> watch;
};

namespace {

Budget& budget_of(lua_State* L) { return *extras_of(L).budget; }

int budget_exceeded(lua_State* L, const Budget& b) {
  return luaL_error(L, "CPU time budget exceeded (%d ms)", static_cast<int>(b.limit.count() / 1000));
}

// No hook is set while a call is within its budget: with a count hook, Lua 5.4 stops before every
// instruction (luaG_traceexec), which cost 14 % of three typical plugins and 23 % of a policy over
// 1,000 candidates. The CPU watchdog installs this hook, from a signal handler on the state's
// thread (as lua.c does for Ctrl-C), once the call has used its CPU time.
//
// A spent budget must not be catchable: a script that wraps its loop in pcall would otherwise go on
// after every catch, forever. So the hook stops at every instruction, and from the host's
// coroutine it yields, which abandons the whole call, pcall frames and all. Where a yield is
// impossible (under a C call: a table.sort comparator, a metamethod the host's C++ triggers) it
// raises; a pcall may catch that, but the next instruction comes straight back here. Raising from a
// hook is only safe because the sandbox's xpcall sets no message handler (see kXpcall): Lua would
// call one right here, with hooks off.
void count_hook(lua_State* L, lua_Debug*) {
  Budget& b = budget_of(L);
  if (!b.spent.load(std::memory_order_relaxed)) return;  // set on a spare coroutine by a late signal
  if (L == b.resumed && lua_isyieldable(L)) {
    lua_yield(L, 0);  // from a hook: returns here, and Lua yields once the hook returns
    return;
  }
  budget_exceeded(L, b);
}

// The watchdog's signal handler, on the state's thread, between two instructions.
void budget_expired(void* budget) {
  auto& b = *static_cast<Budget*>(budget);
  b.spent.store(true, std::memory_order_relaxed);
  lua_State* running = b.running.load(std::memory_order_relaxed);
  lua_sethook(running ? running : b.main, count_hook, LUA_MASKCOUNT, 1);
}

// Arms the budget for one entry from the host: run(), or call() made outside run(). A call() made
// inside run()'s body shares run()'s budget, so a hook has one budget however it reaches the script.
class BudgetScope {
 public:
  BudgetScope(lua_State* L, Budget& b) : L_(L), b_(b), outermost_(!b.armed) {
    if (!outermost_) return;
    b_.spent.store(false, std::memory_order_relaxed);
    b_.watch.emplace(b_.limit, budget_expired, &b_);  // may throw: then nothing is marked armed
    b_.armed = true;
  }
  ~BudgetScope() {
    if (!outermost_) return;
    b_.watch.reset();
    lua_sethook(L_, nullptr, 0, 0);  // set there if the signal came while the host's C++ ran
    b_.armed = false;
  }
  BudgetScope(const BudgetScope&) = delete;
  BudgetScope& operator=(const BudgetScope&) = delete;

 private:
  lua_State* L_;
  Budget& b_;
  bool outermost_;
};

// Called (protected) with the script function and its arguments; runs it in a coroutine so that
// the count hook can yield out of it, and returns its results. The state's spare coroutine is
// reused; a nested call gets a fresh one, and one abandoned by a spent budget is never reused.
int resume_in_coroutine(lua_State* L) {
  int nargs = lua_gettop(L) - 1;
  Budget& b = budget_of(L);
  lua_State* co = nullptr;
  bool spare = !b.spare_busy;
  if (spare && !b.spare) {
    b.spare = lua_newthread(L);
    b.spare_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  if (spare) {
    co = b.spare;
    b.spare_busy = true;
    lua_settop(co, 0);
  } else {
    co = lua_newthread(L);  // dropped when this call returns
    lua_insert(L, 1);
  }
  // Hooks are per coroutine: none, unless the budget is spent already (a late signal may have left
  // one on the spare, and a new coroutine inherits whatever L has). A signal that lands between
  // here and the resume below hooks L, not co: the watchdog signals again at its next tick, and
  // by then `running` names co.
  if (b.spent.load(std::memory_order_relaxed))
    lua_sethook(co, count_hook, LUA_MASKCOUNT, 1);
  else
    lua_sethook(co, nullptr, 0, 0);
  if (!lua_checkstack(co, nargs + 1)) {
    if (spare) b.spare_busy = false;
    return luaL_error(L, "too many arguments");
  }
  lua_xmove(L, co, nargs + 1);
  lua_State* outer = std::exchange(b.resumed, co);
  lua_State* outer_running = b.running.exchange(co, std::memory_order_relaxed);
  int nresults = 0;
  int status = lua_resume(co, L, nargs, &nresults);
  b.resumed = outer;
  // An error closes the coroutine's pending <close> variables, as lua_pcall would have (the hook
  // raises in there rather than yields: b.resumed no longer names co). After a spent budget the
  // coroutine is dropped as it is: closing it would run more script code.
  bool abandoned = status == LUA_YIELD || b.spent.load(std::memory_order_relaxed);
  if (status != LUA_OK && !abandoned) lua_resetthread(co);
  b.running.store(outer_running, std::memory_order_relaxed);
  if (spare) {
    b.spare_busy = false;
    if (abandoned) {
      luaL_unref(L, LUA_REGISTRYINDEX, b.spare_ref);
      b.spare = nullptr;
      b.spare_ref = LUA_NOREF;
    }
  }
  // Only the count hook yields (the sandbox has no coroutine library), and only once spent.
  if (abandoned) return budget_exceeded(L, b);
  if (status == LUA_OK) {
    luaL_checkstack(L, nresults, "too many results");
    lua_xmove(co, L, nresults);
    return nresults;
  }
  lua_xmove(co, L, 1);  // the error object
  return lua_error(L);
}

// setmetatable without finalizers. A __gc metamethod runs with hooks off (lgc.c GCTM sets
// allowhook to 0), so no budget can stop it, and lua_close runs every pending one: a looping __gc
// would hang the call that collects it, reload and shutdown. Lua only marks an object for
// finalization if its metatable has a __gc field when setmetatable is called, so refusing any
// such field then leaves no finalizer at all (one added to the metatable later is never called).
// A lazy JSON table is filled first: its own metatable is what reads its fields.
int setmetatable_without_gc(lua_State* L) {
  fill_lazy_table(L, 1);
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL)
      return luaL_argerror(L, 2, "__gc is not allowed: finalizers run outside the CPU time budget");
    lua_pop(L, 1);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

// xpcall, with the message handler called once the error has unwound, as a plain call under the
// budget. Lua calls a real message handler where the error was raised, and when the count hook
// raised it that is with hooks still off (the hook's own state): a looping handler would run
// unbounded. Without the debug library a handler cannot look at the stack it runs on, so the
// timing is all that differs. Called with pcall, error and type; returns xpcall.
constexpr const char* kXpcall = R"lua(
local pcall, error, type = ...
return function(f, msgh, ...)
  if type(msgh) ~= "function" then error("bad argument #2 to 'xpcall' (function expected)", 2) end
  local function handled(ok, ...)
    if ok then return true, ... end
    local handler_ok, handled = pcall(msgh, (...))
    if not handler_ok then handled = "error in error handling" end  -- what Lua's xpcall says
    return false, handled
  end
  return handled(pcall(f, ...))
end
)lua";

int json_encode(lua_State* L) {
  luaL_checkany(L, 1);
  std::string out;
  try {
    out = to_json(L, 1).dump(-1, ' ', false, json::error_handler_t::replace);
  } catch (const std::exception& e) {
    return luaL_error(L, "json_encode: %s", e.what());
  }
  lua_pushlstring(L, out.data(), out.size());
  return 1;
}

int json_decode(lua_State* L) {
  size_t n = 0;
  const char* s = luaL_checklstring(L, 1, &n);
  json j = json::parse(std::string_view(s, n), nullptr, false);
  if (j.is_discarded()) {
    lua_pushnil(L);
    lua_pushstring(L, "invalid JSON");
    return 2;
  }
  push_json(L, j);
  return 1;
}

int monotonic_seconds(lua_State* L) {
  auto now = std::chrono::steady_clock::now().time_since_epoch();
  lua_pushnumber(L, std::chrono::duration<double>(now).count());
  return 1;
}

int log_fn(lua_State* L) {
  auto* log = static_cast<std::function<void(int, const std::string&)>*>(lua_touserdata(L, lua_upvalueindex(1)));
  int level = static_cast<int>(lua_tointeger(L, lua_upvalueindex(2)));
  size_t n = 0;
  const char* s = luaL_tolstring(L, 1, &n);
  (*log)(level, std::string(s, n));
  return 0;
}

void copy_fields(lua_State* L, int from, int to, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    lua_getfield(L, from, name);
    lua_setfield(L, to, name);
  }
}

}  // namespace

struct Vm::Alloc {
  std::size_t limit = 0;
  std::size_t used = 0;
  Budget budget;
  StateExtras extras{&budget, nullptr};
  StateExtras* extras_ptr = &extras;

  static void* fn(void* ud, void* ptr, size_t old_size, size_t new_size) {
    auto* a = static_cast<Alloc*>(ud);
    if (!ptr) old_size = 0;  // for new blocks Lua passes the object's type here, not a size
    if (new_size == 0) {
      a->used -= old_size;
      std::free(ptr);
      return nullptr;
    }
    if (new_size > old_size && a->used + (new_size - old_size) > a->limit) return nullptr;
    void* p = std::realloc(ptr, new_size);
    if (p) a->used = a->used - old_size + new_size;
    return p;
  }
};

Vm::Vm(const std::string& chunk_name, const std::string& source, const std::string& config_json,
       Limits limits, std::function<void(int, const std::string&)> log, Extend extend)
    : alloc_(std::make_unique<Alloc>()), log_(std::move(log)) {
  alloc_->limit = limits.memory_bytes;
  alloc_->budget.limit = limits.cpu_time_per_call;
  L_ = lua_newstate(&Alloc::fn, alloc_.get());
  if (!L_) throw std::runtime_error("cannot create a Lua state (memory limit too small?)");
  alloc_->budget.main = L_;
  *static_cast<StateExtras**>(lua_getextraspace(L_)) = alloc_->extras_ptr;
  // Generational collection: a hook's garbage (the tables a request and an answer become) dies
  // young, and the incremental collector kept marking the state's long-lived tables to find it.
  lua_gc(L_, LUA_GCGEN, 0, 0);
  luaL_openlibs(L_);

  // Strip the pattern functions from the real string table (see plain_find).
  lua_getglobal(L_, "string");
  int string_table = lua_gettop(L_);
  lua_pushcfunction(L_, plain_find);
  lua_setfield(L_, string_table, "find");
  for (const char* name : {"match", "gmatch", "gsub", "dump"}) {
    lua_pushnil(L_);
    lua_setfield(L_, string_table, name);
  }

  // The sandbox environment: only what cannot reach the outside or the host.
  lua_newtable(L_);
  int env = lua_gettop(L_);
  lua_pushglobaltable(L_);
  int globals = lua_gettop(L_);
  copy_fields(L_, globals, env, {"assert", "error", "ipairs", "next", "pairs", "pcall", "select",
                                  "tonumber", "tostring", "type", "rawequal", "rawget", "rawlen",
                                  "rawset", "math", "table", "utf8"});
  register_json(L_, env);  // its next and raw functions replace those just copied
  luaL_loadbufferx(L_, kXpcall, std::strlen(kXpcall), "=xpcall", "t");
  for (const char* name : {"pcall", "error", "type"}) lua_getfield(L_, globals, name);
  lua_call(L_, 3, 1);
  lua_setfield(L_, env, "xpcall");
  lua_getfield(L_, globals, "setmetatable");
  lua_pushcclosure(L_, setmetatable_without_gc, 1);
  lua_setfield(L_, env, "setmetatable");
  lua_pushvalue(L_, string_table);
  lua_setfield(L_, env, "string");
  lua_newtable(L_);  // os: time and clock only
  lua_getfield(L_, globals, "os");
  int os = lua_gettop(L_);
  copy_fields(L_, os, os - 1, {"time", "clock"});
  lua_pop(L_, 1);
  lua_setfield(L_, env, "os");

  // The plexus module.
  lua_newtable(L_);
  int plexus = lua_gettop(L_);
  lua_pushcfunction(L_, json_encode);
  lua_setfield(L_, plexus, "json_encode");
  lua_pushcfunction(L_, json_decode);
  lua_setfield(L_, plexus, "json_decode");
  lua_pushcfunction(L_, monotonic_seconds);
  lua_setfield(L_, plexus, "now");
  register_text(L_, plexus);
  push_null(L_);
  lua_setfield(L_, plexus, "null");
  lua_newtable(L_);
  int logt = lua_gettop(L_);
  const char* level_names[] = {"debug", "info", "warn", "error"};
  for (int level = 0; level < 4; ++level) {
    lua_pushlightuserdata(L_, &log_);
    lua_pushinteger(L_, level);
    lua_pushcclosure(L_, log_fn, 2);
    lua_setfield(L_, logt, level_names[level]);
  }
  lua_setfield(L_, plexus, "log");
  lua_pushlightuserdata(L_, &log_);
  lua_pushinteger(L_, 1);
  lua_pushcclosure(L_, log_fn, 2);
  lua_setfield(L_, env, "print");
  struct Constant {
    const char* name;
    int value;
  };
  for (auto [name, value] : {Constant{"CONTINUE", 0}, Constant{"UNCHANGED", 0},
                             Constant{"MODIFIED", 1}, Constant{"RESPOND", 2}, Constant{"PICK", 3},
                             Constant{"DROP", 4}}) {
    lua_pushinteger(L_, value);
    lua_setfield(L_, plexus, name);
  }
  push_json(L_, json::parse(config_json));
  lua_setfield(L_, plexus, "config");
  lua_setfield(L_, env, "plexus");
  lua_pop(L_, 1);  // globals
  if (extend) extend(L_, env);
  lua_pushvalue(L_, env);
  env_ref_ = luaL_ref(L_, LUA_REGISTRYINDEX);
  lua_settop(L_, 0);

  // Load as text only (no bytecode), with the sandbox as _ENV, and run the top level.
  if (luaL_loadbufferx(L_, source.data(), source.size(), ("@" + chunk_name).c_str(), "t") != LUA_OK) {
    std::string message = lua_tostring(L_, -1);
    lua_close(L_);
    L_ = nullptr;
    throw std::runtime_error(message);
  }
  lua_rawgeti(L_, LUA_REGISTRYINDEX, env_ref_);
  lua_setupvalue(L_, -2, 1);
  try {
    call(0, 0);
  } catch (...) {
    lua_close(L_);
    L_ = nullptr;
    throw;
  }
}

json Vm::global_json(const char* name) {
  json out;
  run([&](lua_State* L) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, env_ref_);
    lua_getfield(L, -1, name);
    if (!lua_isnil(L, -1)) out = to_json(L, -1);
    lua_pop(L, 2);
  });
  return out;
}

void Vm::set_config(const json& config) {
  run([&](lua_State* L) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, env_ref_);
    lua_getfield(L, -1, "plexus");
    push_json(L, config);
    lua_setfield(L, -2, "config");
    lua_pop(L, 2);
  });
}

Vm::~Vm() {
  if (L_) lua_close(L_);
}

bool Vm::push_global_function(const char* name) {
  lua_rawgeti(L_, LUA_REGISTRYINDEX, env_ref_);
  lua_getfield(L_, -1, name);
  lua_remove(L_, -2);
  if (lua_isfunction(L_, -1)) return true;
  lua_pop(L_, 1);
  return false;
}

Vm::HostWork::HostWork(Vm& vm) {
  Budget& b = vm.alloc_->budget;
  if (!b.watch) return;
  b.watch.reset();
  paused_ = &b;
}

Vm::HostWork::~HostWork() {
  if (paused_) paused_->watch.emplace(paused_->limit, budget_expired, paused_);
}

void Vm::call(int nargs, int nresults) {
  BudgetScope scope(L_, alloc_->budget);
  lua_pushcfunction(L_, resume_in_coroutine);
  lua_insert(L_, -(nargs + 2));
  protected_call(nargs + 1, nresults);
}

namespace {
int run_trampoline(lua_State* L) {
  auto* body = static_cast<const Vm::BodyRef*>(lua_touserdata(L, 1));
  lua_settop(L, 0);
  std::string failure;
  try {
    body->invoke(body->callable, L);
    return 0;
  } catch (const std::exception& e) {  // Lua's own errors are not std::exceptions: they pass
    failure = e.what();
  }
  return luaL_error(L, "%s", failure.c_str());
}
}  // namespace

void Vm::run_ref(BodyRef body) {
  BudgetScope scope(L_, alloc_->budget);
  lua_settop(L_, 0);
  lua_pushcfunction(L_, run_trampoline);
  lua_pushlightuserdata(L_, &body);
  protected_call(1, 0);
  lua_settop(L_, 0);
}

void Vm::protected_call(int nargs, int nresults) {
  if (lua_pcall(L_, nargs, nresults, 0) == LUA_OK) return;
  std::string message = lua_isstring(L_, -1) ? lua_tostring(L_, -1) : "error object is not a string";
  lua_pop(L_, 1);
  throw std::runtime_error(message);
}

std::size_t Vm::memory_in_use() const { return alloc_->used; }

}  // namespace plexus::lua
