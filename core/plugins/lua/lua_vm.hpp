#pragma once
// One sandboxed Lua 5.4 state: text-only loading, a whitelisted environment, a memory cap (a
// counting allocator), a CPU time budget per call that the script cannot catch (once the CPU
// watchdog finds the call over it, a count hook yields out of the call's coroutine) and no
// finalizers. Used from one thread at a time.
#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <type_traits>
#include <memory>
#include <string>
#include <string_view>

struct lua_State;

namespace plexus::lua {

struct Budget;

struct Limits {
  std::chrono::microseconds cpu_time_per_call{10000};
  std::size_t memory_bytes = 8u << 20;
};

class Vm {
 public:
  // What a host adds to a fresh state before the script's top level runs: called with the
  // sandbox's global table at `env` (so a script that keeps `local ipairs = ipairs` keeps the
  // host's version).
  using Extend = void (*)(lua_State* L, int env);
  // Creates the state and runs `source` (named `chunk_name` in errors) in the sandbox.
  // Throws std::runtime_error with Lua's message (syntax errors name the line).
  Vm(const std::string& chunk_name, const std::string& source, const std::string& config_json,
     Limits limits, std::function<void(int level, const std::string&)> log, Extend extend = nullptr);
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  lua_State* state() const { return L_; }
  // Pushes the script's global `name` if it is a function; returns false (nothing pushed) if not.
  bool push_global_function(const char* name);
  // Calls the function below `nargs` arguments under the CPU time budget, in a coroutine of its
  // own; leaves `nresults` results. Throws std::runtime_error on any Lua error (message includes
  // "CPU time budget exceeded" or "not enough memory" when a limit was hit); the state stays
  // usable. A spent budget cannot be caught by the script: it abandons the whole call.
  void call(int nargs, int nresults);
  // Runs `body` inside one protected call with the CPU time budget armed. Everything a hook
  // does with the state (building its arguments, calling the script, reading the results) must
  // happen in here: a Lua error outside a protected call (a memory cap hit while building a table,
  // say) makes Lua panic and abort the process. Call the script with call(), not lua_call: only in
  // call()'s coroutine does a spent budget end the script at once. The calls `body` makes share one
  // budget. A C++ exception thrown by `body` and any Lua error both come out as
  // std::runtime_error; the state stays usable.
  template <class Body>
  void run(Body&& body) {
    // A reference to the caller's callable, not a std::function: a hook's lambda captures more
    // than std::function keeps inline, and every hook call would allocate for it.
    run_ref(BodyRef{&body, [](void* callable, lua_State* L) { (*static_cast<std::remove_reference_t<Body>*>(callable))(L); }});
  }
  // The host's own work inside run(): parsing a request or an answer for Lua (lua_json.hpp), or
  // encoding a table back into JSON. Its CPU time does not count against the script's budget, so a large request
  // cannot fail a cheap script. Only for work that runs no script code (raw table access, no
  // metamethods); the script's own plexus.json_decode is counted. The script code after it gets a
  // fresh budget: a hook's budget holds for each stretch of script code between two conversions.
  class HostWork {
   public:
    explicit HostWork(Vm& vm);
    ~HostWork();
    HostWork(const HostWork&) = delete;
    HostWork& operator=(const HostWork&) = delete;

   private:
    Budget* paused_ = nullptr;  // null: no budget was armed
  };

  std::size_t memory_in_use() const;
  // The script's global `name` as JSON (null when unset), and a replacement for plexus.config:
  // how a script's `schema` table is read and its config, defaults filled in, handed back.
  nlohmann::json global_json(const char* name);
  void set_config(const nlohmann::json& config);

  struct Alloc;

  struct BodyRef {
    void* callable;
    void (*invoke)(void* callable, lua_State* L);
  };

 private:
  void run_ref(BodyRef body);
  // lua_pcall on the main stack; an error comes out as std::runtime_error.
  void protected_call(int nargs, int nresults);

  lua_State* L_ = nullptr;
  std::unique_ptr<Alloc> alloc_;
  int env_ref_ = 0;
  std::function<void(int, const std::string&)> log_;
};

}  // namespace plexus::lua
