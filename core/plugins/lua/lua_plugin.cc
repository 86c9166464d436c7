// Lua plugins: the four hooks as global functions of a sandboxed script (lua_vm.hpp). The script
// runs on the upstream loop thread, like every hook, in a state of its own.
#include <lua.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "plugins/loaded_plugin.hpp"
#include "plugins/lua/lua_vm.hpp"

namespace plexus {
namespace {

using nlohmann::json;

constexpr int kContinue = 0, kModified = 1, kRespond = 2, kPick = 3, kDrop = 4;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read the file");
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

// A request's state table for one plugin, kept in that plugin's Lua registry.
struct LuaStateRef {
  std::shared_ptr<lua::Vm> vm;
  int ref = LUA_NOREF;
  ~LuaStateRef() {
    if (vm && vm->state()) luaL_unref(vm->state(), LUA_REGISTRYINDEX, ref);
  }
};

// What the ctx methods reach: a full userdata (a script cannot forge one) naming the hook call it
// belongs to. It only works while that call runs; a script that keeps a method and calls it
// later gets an error, never a dangling context.
struct CtxHandle {
  HookContext* ctx;
  std::uint64_t call;
  const std::uint64_t* running_call;  // the plugin's; the plugin outlives its Lua state
};

HookContext& live(lua_State* L) {
  auto* h = static_cast<CtxHandle*>(lua_touserdata(L, lua_upvalueindex(1)));
  if (*h->running_call != h->call) luaL_error(L, "ctx used after its hook returned");
  return *h->ctx;
}

template <class T>
T& live_as(lua_State* L) {
  auto* ctx = dynamic_cast<T*>(&live(L));
  if (!ctx) luaL_error(L, "this ctx method is not available in this hook");
  return *ctx;
}

std::string field_string(lua_State* L, int table, const char* key, const char* fallback) {
  lua_getfield(L, table, key);
  std::string out = lua_isstring(L, -1) ? lua_tostring(L, -1) : fallback;
  lua_pop(L, 1);
  return out;
}

int ctx_reject(lua_State* L) {
  auto& ctx = live_as<RequestContext>(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  Error e;
  lua_getfield(L, 2, "status");
  e.status = lua_isinteger(L, -1) ? static_cast<int>(lua_tointeger(L, -1)) : 400;
  lua_pop(L, 1);
  if (e.status < 400 || e.status > 599) return luaL_error(L, "reject: status must be 400..599");
  e.message = field_string(L, 2, "message", "Rejected by a plugin");
  e.type = field_string(L, 2, "type", e.status < 500 ? "invalid_request_error" : "server_error");
  e.param = field_string(L, 2, "param", "");
  e.code = field_string(L, 2, "code", "");
  ctx.reject(std::move(e));
  lua_pushinteger(L, kRespond);
  return 1;
}

int ctx_respond(lua_State* L) {
  auto& ctx = live_as<RequestContext>(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  ctx.respond(lua::to_json(L, 2).dump());
  lua_pushinteger(L, kRespond);
  return 1;
}

int ctx_set_upstream_header(lua_State* L) {
  live_as<RequestContext>(L).set_upstream_header(luaL_checkstring(L, 2), luaL_checkstring(L, 3));
  return 0;
}

int ctx_insert(lua_State* L) {
  auto& ctx = live_as<ChunkContext>(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  ctx.insert(lua::to_json(L, 2).dump());
  return 0;
}

int ctx_add_field(lua_State* L) {
  auto& ctx = live_as<CompleteContext>(L);
  std::string key = luaL_checkstring(L, 2);
  luaL_checkany(L, 3);
  ctx.add_field(key, lua::to_json(L, 3).dump());
  return 0;
}

int ctx_add_header(lua_State* L) {
  live_as<CompleteContext>(L).add_header(luaL_checkstring(L, 2), luaL_checkstring(L, 3));
  return 0;
}

class LuaPlugin final : public Plugin, public Reloadable {
 public:
  explicit LuaPlugin(PluginConfig config) : config_(std::move(config)) { vm_ = compile(); }

  unsigned hooks() const override { return hooks_; }

  void reload() override {
    auto vm = compile();  // throws, leaving the running version in place
    vm_ = std::move(vm);
  }

  RequestStatus on_request(RequestContext& ctx) override {
    int status = kContinue;
    guarded_run("on_request", ctx, [&](lua_State* L) {
      json req = parse_or_fail(ctx.request_json(), "the request is not JSON");
      lua::push_json(L, req);  // kept below the function, to read back after the call
      int req_index = lua_gettop(L);
      if (!vm_->push_global_function("on_request")) return;
      lua_pushvalue(L, req_index);
      push_ctx(L, ctx);
      vm_->call(2, 1);
      status = status_of(L, -1, "on_request", {kContinue, kModified, kRespond});
      if (status == kModified) ctx.set_request_json(lua::to_json(L, req_index).dump());
    });
    return status == kRespond ? RequestStatus::kRespond : RequestStatus::kContinue;
  }

  RouteStatus on_route(RouteContext& ctx) override {
    int status = kContinue;
    lua_Integer picked = 0;
    auto& cands = ctx.candidates();
    guarded_run("on_route", ctx, [&](lua_State* L) {
      lua_createtable(L, static_cast<int>(cands.size()), 0);
      int table = lua_gettop(L);
      for (std::size_t i = 0; i < cands.size(); ++i) {
        push_candidate(L, cands[i]);
        lua_rawseti(L, table, static_cast<lua_Integer>(i + 1));
      }
      if (!vm_->push_global_function("on_route")) return;
      lua_pushvalue(L, table);
      push_ctx(L, ctx);
      lua_pushlstring(L, ctx.model().data(), ctx.model().size());
      lua_setfield(L, -2, "model");
      vm_->call(2, 2);
      status = status_of(L, -2, "on_route", {kContinue, kPick});
      picked = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
      for (std::size_t i = 0; i < cands.size(); ++i) {
        lua_rawgeti(L, table, static_cast<lua_Integer>(i + 1));
        lua_getfield(L, -1, "score");
        if (lua_isnumber(L, -1)) cands[i].score = lua_tonumber(L, -1);
        lua_getfield(L, -2, "dropped");
        cands[i].dropped = lua_toboolean(L, -1);
        lua_pop(L, 3);
      }
    });
    if (status != kPick) return RouteStatus::kContinue;
    if (picked < 1 || picked > static_cast<lua_Integer>(cands.size()))
      throw PluginError("on_route returned plexus.PICK with index " + std::to_string(picked) +
                        "; expected 1.." + std::to_string(cands.size()));
    ctx.pick(static_cast<std::size_t>(picked - 1));
    return RouteStatus::kPick;
  }

  ChunkStatus on_chunk(ChunkContext& ctx) override {
    int status = kContinue;
    guarded_run("on_chunk", ctx, [&](lua_State* L) {
      if (ctx.end_of_stream())
        lua_pushnil(L);
      else
        lua::push_json(L, parse_or_fail(ctx.chunk(), "the chunk is not JSON"));
      int chunk_index = lua_gettop(L);
      if (!vm_->push_global_function("on_chunk")) return;
      lua_pushvalue(L, chunk_index);
      push_ctx(L, ctx);
      lua_pushboolean(L, ctx.end_of_stream());
      lua_setfield(L, -2, "end_of_stream");
      lua_pushboolean(L, ctx.whole());
      lua_setfield(L, -2, "whole");
      vm_->call(2, 1);
      status = status_of(L, -1, "on_chunk", {kContinue, kModified, kDrop});
      if (status == kModified) {
        if (ctx.end_of_stream()) throw PluginError("on_chunk: nothing to modify at end of stream; use ctx:insert");
        ctx.set_chunk(lua::to_json(L, chunk_index).dump());
      }
    });
    if (status == kModified) return ChunkStatus::kModified;
    return status == kDrop ? ChunkStatus::kDrop : ChunkStatus::kUnchanged;
  }

  void on_complete(CompleteContext& ctx) override {
    const Completion& r = ctx.result();
    json result = {{"status", r.status}, {"stream", r.stream}, {"node", r.node}, {"model", r.model},
                   {"prompt_tokens", r.prompt_tokens}, {"completion_tokens", r.completion_tokens},
                   {"ttft_ms", r.ttft_ms}, {"total_ms", r.total_ms}, {"finish_reason", r.finish_reason},
                   {"error_code", r.error_code}, {"error_message", r.error_message}};
    guarded_run("on_complete", ctx, [&](lua_State* L) {
      if (!vm_->push_global_function("on_complete")) return;
      lua::push_json(L, result);
      push_ctx(L, ctx);
      vm_->call(2, 0);
    });
  }

 private:
  std::shared_ptr<lua::Vm> compile() {
    std::string source;
    try {
      source = read_file(config_.file);
    } catch (const std::exception& e) {
      throw PluginLoadError(config_.path + " (" + config_.name + ", " + config_.file + "): " + e.what());
    }
    std::string prefix = "[plugin:" + config_.name + "] ";
    auto log = [prefix](int level, const std::string& message) {
      switch (level) {
        case 0: spdlog::debug("{}{}", prefix, message); break;
        case 1: spdlog::info("{}{}", prefix, message); break;
        case 2: spdlog::warn("{}{}", prefix, message); break;
        default: spdlog::error("{}{}", prefix, message);
      }
    };
    std::shared_ptr<lua::Vm> vm;
    try {
      vm = std::make_shared<lua::Vm>(config_.file, source, config_.config_json,
                                     lua::Limits{config_.instruction_limit, config_.memory_limit_bytes}, log);
    } catch (const std::exception& e) {
      throw PluginLoadError(config_.path + " (" + config_.name + ", " + config_.file + "): " + e.what());
    }
    unsigned hooks = 0;
    for (auto [name, bit] : {std::pair{"on_request", kHookRequest}, std::pair{"on_route", kHookRoute},
                             std::pair{"on_chunk", kHookChunk}, std::pair{"on_complete", kHookComplete}}) {
      if (vm->push_global_function(name)) {
        hooks |= bit;
        lua_pop(vm->state(), 1);
      }
    }
    if (hooks == 0)
      throw PluginLoadError(config_.path + " (" + config_.name + ", " + config_.file +
                            "): defines none of on_request, on_route, on_chunk, on_complete");
    hooks_ = hooks;
    return vm;
  }

  static json parse_or_fail(std::string_view text, const char* what) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded()) throw PluginError(what);
    return j;
  }

  // Runs a hook's whole body in one protected call (see Vm::run), so no Lua error, budget or
  // memory failure can escape as a panic. The ctx methods stop working however the body ends.
  void guarded_run(const char* hook, HookContext& ctx, const std::function<void(lua_State*)>& body) {
    auto vm = vm_;  // a reload during the call must not free the state under it
    running_call_ = ++calls_;
    struct Done {
      std::uint64_t& running;
      ~Done() { running = 0; }
    } done{running_call_};
    try {
      vm->run(body);
    } catch (const std::exception& e) {
      throw PluginError(e.what());
    }
  }

  // The hook's status at `index`: nil counts as CONTINUE/UNCHANGED.
  static int status_of(lua_State* L, int index, const char* hook, std::initializer_list<int> allowed) {
    if (lua_isnil(L, index)) return kContinue;
    int status = lua_isinteger(L, index) ? static_cast<int>(lua_tointeger(L, index)) : -1;
    for (int a : allowed)
      if (a == status) return status;
    throw PluginError(std::string(hook) + " returned an unexpected value; return a plexus status constant (or nothing)");
  }

  static void push_candidate(lua_State* L, const Candidate& c) {
    lua_createtable(L, 0, 14);
    auto set_s = [&](const char* k, const std::string& v) { lua_pushlstring(L, v.data(), v.size()); lua_setfield(L, -2, k); };
    auto set_n = [&](const char* k, double v) { lua_pushnumber(L, v); lua_setfield(L, -2, k); };
    auto set_b = [&](const char* k, bool v) { lua_pushboolean(L, v); lua_setfield(L, -2, k); };
    set_s("node", c.node);
    set_s("model", c.model);
    set_s("group", c.group);
    set_s("region", c.region);
    set_b("hot", c.hot);
    set_b("healthy", c.healthy);
    lua_pushinteger(L, c.in_flight);
    lua_setfield(L, -2, "in_flight");
    set_n("latency_p50_ms", c.latency_p50_ms);
    set_n("latency_p95_ms", c.latency_p95_ms);
    set_n("price_input_per_1k", c.price_input_per_1k);
    set_n("price_output_per_1k", c.price_output_per_1k);
    set_n("score", c.score);
    set_b("dropped", c.dropped);
  }

  // Pushes the ctx table: fields, per-request state, and methods bound to this hook call.
  void push_ctx(lua_State* L, HookContext& ctx) {
    lua_createtable(L, 0, 12);
    int t = lua_gettop(L);
    auto* handle = static_cast<CtxHandle*>(lua_newuserdatauv(L, sizeof(CtxHandle), 0));
    *handle = CtxHandle{&ctx, running_call_, &running_call_};
    int handle_index = lua_gettop(L);
    auto method = [&](const char* name, lua_CFunction fn) {
      lua_pushvalue(L, handle_index);
      lua_pushcclosure(L, fn, 1);
      lua_setfield(L, t, name);
    };
    method("reject", ctx_reject);
    method("respond", ctx_respond);
    method("set_upstream_header", ctx_set_upstream_header);
    method("insert", ctx_insert);
    method("add_field", ctx_add_field);
    method("add_header", ctx_add_header);
    lua_pop(L, 1);
    auto set = [&](const char* key, std::string_view v) {
      lua_pushlstring(L, v.data(), v.size());
      lua_setfield(L, t, key);
    };
    set("request_id", ctx.request_id());
    set("key_id", ctx.key_id());
    set("group", ctx.group());
    // Per-request state, one table per plugin, alive until the request ends.
    auto& slot = ctx.state();
    auto* ref = static_cast<LuaStateRef*>(slot.get());
    if (!ref || ref->vm != vm_) {
      auto fresh = std::make_shared<LuaStateRef>();
      fresh->vm = vm_;
      lua_newtable(L);
      fresh->ref = luaL_ref(L, LUA_REGISTRYINDEX);
      slot = fresh;
      ref = fresh.get();
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref->ref);
    lua_setfield(L, t, "state");
  }

  PluginConfig config_;
  std::uint64_t calls_ = 0;
  std::uint64_t running_call_ = 0;  // the hook call in progress; 0 between calls
  std::shared_ptr<lua::Vm> vm_;
  unsigned hooks_ = 0;
};

}  // namespace

LoadedPlugin load_lua_plugin(const PluginConfig& config) {
  auto plugin = std::make_shared<LuaPlugin>(config);
  LoadedPlugin loaded;
  loaded.config = config;
  loaded.hooks = plugin->hooks();
  loaded.reloadable = plugin.get();
  loaded.plugin = plugin;
  return loaded;
}

}  // namespace plexus
