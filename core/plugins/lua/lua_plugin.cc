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

// What the ctx methods reach while their hook runs; nulled when it returns.
struct ContextBox {
  HookContext* ctx = nullptr;
};

HookContext& live(lua_State* L) {
  auto* box = static_cast<ContextBox*>(lua_touserdata(L, lua_upvalueindex(1)));
  if (!box->ctx) luaL_error(L, "ctx used after its hook returned");
  return *box->ctx;
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
    auto vm = vm_;
    lua_State* L = vm->state();
    push_json(L, ctx.request_json());  // kept below the function, to read back after the call
    int req = lua_gettop(L);
    if (!vm->push_global_function("on_request")) {
      lua_settop(L, 0);
      return RequestStatus::kContinue;
    }
    lua_pushvalue(L, req);
    ContextBox* box = push_ctx(*vm, ctx);
    box->ctx = &ctx;
    int status = run(*vm, 2, box);
    if (status == kModified) {
      ctx.set_request_json(lua::to_json(L, req).dump());
    } else if (status != kContinue && status != kRespond) {
      lua_settop(L, 0);
      throw PluginError("on_request returned " + std::to_string(status) +
                        "; expected plexus.CONTINUE, plexus.MODIFIED or plexus.RESPOND");
    }
    lua_settop(L, 0);
    return status == kRespond ? RequestStatus::kRespond : RequestStatus::kContinue;
  }

  RouteStatus on_route(RouteContext& ctx) override {
    auto vm = vm_;
    lua_State* L = vm->state();
    auto& cands = ctx.candidates();
    lua_createtable(L, static_cast<int>(cands.size()), 0);
    int table = lua_gettop(L);
    for (std::size_t i = 0; i < cands.size(); ++i) {
      const Candidate& c = cands[i];
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
      lua_rawseti(L, table, static_cast<lua_Integer>(i + 1));
    }
    if (!vm->push_global_function("on_route")) {
      lua_settop(L, 0);
      return RouteStatus::kContinue;
    }
    lua_pushvalue(L, table);
    ContextBox* box = push_ctx(*vm, ctx);
    box->ctx = &ctx;
    lua_pushlstring(L, ctx.model().data(), ctx.model().size());
    lua_setfield(L, -2, "model");
    int status = run(*vm, 2, box, /*results=*/2);
    lua_Integer picked = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
    for (std::size_t i = 0; i < cands.size(); ++i) {
      lua_rawgeti(L, table, static_cast<lua_Integer>(i + 1));
      lua_getfield(L, -1, "score");
      if (lua_isnumber(L, -1)) cands[i].score = lua_tonumber(L, -1);
      lua_getfield(L, -2, "dropped");
      cands[i].dropped = lua_toboolean(L, -1);
      lua_pop(L, 3);
    }
    lua_settop(L, 0);
    if (status == kPick) {
      if (picked < 1 || picked > static_cast<lua_Integer>(cands.size()))
        throw PluginError("on_route returned plexus.PICK with index " + std::to_string(picked) +
                          "; expected 1.." + std::to_string(cands.size()));
      ctx.pick(static_cast<std::size_t>(picked - 1));
      return RouteStatus::kPick;
    }
    if (status != kContinue)
      throw PluginError("on_route returned " + std::to_string(status) +
                        "; expected plexus.CONTINUE or plexus.PICK, index");
    return RouteStatus::kContinue;
  }

  ChunkStatus on_chunk(ChunkContext& ctx) override {
    auto vm = vm_;
    lua_State* L = vm->state();
    if (ctx.end_of_stream()) {
      lua_pushnil(L);
    } else {
      json chunk = json::parse(ctx.chunk(), nullptr, false);
      if (chunk.is_discarded()) {
        lua_settop(L, 0);
        throw PluginError("the chunk is not JSON");
      }
      lua::push_json(L, chunk);
    }
    int chunk_index = lua_gettop(L);
    if (!vm->push_global_function("on_chunk")) {
      lua_settop(L, 0);
      return ChunkStatus::kUnchanged;
    }
    lua_pushvalue(L, chunk_index);
    ContextBox* box = push_ctx(*vm, ctx);
    box->ctx = &ctx;
    lua_pushboolean(L, ctx.end_of_stream());
    lua_setfield(L, -2, "end_of_stream");
    lua_pushboolean(L, ctx.whole());
    lua_setfield(L, -2, "whole");
    int status = run(*vm, 2, box);
    ChunkStatus out = ChunkStatus::kUnchanged;
    if (status == kModified) {
      if (ctx.end_of_stream()) throw PluginError("on_chunk: nothing to modify at end of stream; use ctx:insert");
      ctx.set_chunk(lua::to_json(L, chunk_index).dump());
      out = ChunkStatus::kModified;
    } else if (status == kDrop) {
      out = ChunkStatus::kDrop;
    } else if (status != kContinue) {
      lua_settop(L, 0);
      throw PluginError("on_chunk returned " + std::to_string(status) +
                        "; expected plexus.UNCHANGED, plexus.MODIFIED or plexus.DROP");
    }
    lua_settop(L, 0);
    return out;
  }

  void on_complete(CompleteContext& ctx) override {
    auto vm = vm_;
    lua_State* L = vm->state();
    if (!vm->push_global_function("on_complete")) return;
    const Completion& r = ctx.result();
    json result = {{"status", r.status}, {"stream", r.stream}, {"node", r.node}, {"model", r.model},
                   {"prompt_tokens", r.prompt_tokens}, {"completion_tokens", r.completion_tokens},
                   {"ttft_ms", r.ttft_ms}, {"total_ms", r.total_ms}, {"finish_reason", r.finish_reason},
                   {"error_code", r.error_code}, {"error_message", r.error_message}};
    lua::push_json(L, result);
    ContextBox* box = push_ctx(*vm, ctx);
    box->ctx = &ctx;
    run(*vm, 2, box);
    lua_settop(L, 0);
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

  static void push_json(lua_State* L, const std::string& text) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded()) throw PluginError("the request is not JSON");
    lua::push_json(L, j);
  }

  // Pushes the ctx table (fields and methods). The box's pointer is set by the caller.
  ContextBox* push_ctx(lua::Vm& vm, HookContext& ctx) {
    lua_State* L = vm.state();
    lua_createtable(L, 0, 12);
    int t = lua_gettop(L);
    auto* box = static_cast<ContextBox*>(lua_newuserdatauv(L, sizeof(ContextBox), 0));
    new (box) ContextBox{};
    int box_index = lua_gettop(L);
    auto method = [&](const char* name, lua_CFunction fn) {
      lua_pushvalue(L, box_index);
      lua_pushcclosure(L, fn, 1);
      lua_setfield(L, t, name);
    };
    method("reject", ctx_reject);
    method("respond", ctx_respond);
    method("set_upstream_header", ctx_set_upstream_header);
    method("insert", ctx_insert);
    method("add_field", ctx_add_field);
    method("add_header", ctx_add_header);
    lua_pop(L, 1);  // the box stays reachable through the closures' upvalues
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
    if (!ref || ref->vm.get() != &vm) {
      auto fresh = std::make_shared<LuaStateRef>();
      fresh->vm = vm_;
      lua_newtable(L);
      fresh->ref = luaL_ref(L, LUA_REGISTRYINDEX);
      slot = fresh;
      ref = fresh.get();
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref->ref);
    lua_setfield(L, t, "state");
    return box;
  }

  // Calls the pushed hook; returns its status (nil counts as CONTINUE). Leaves `results` values.
  int run(lua::Vm& vm, int nargs, ContextBox* box, int results = 1) {
    lua_State* L = vm.state();
    try {
      vm.call(nargs, results);
    } catch (const std::exception& e) {
      box->ctx = nullptr;
      lua_settop(L, 0);
      throw PluginError(e.what());
    }
    box->ctx = nullptr;
    int first = lua_gettop(L) - results + 1;
    if (lua_isnil(L, first)) return kContinue;
    if (!lua_isinteger(L, first)) {
      lua_settop(L, 0);
      throw PluginError("a hook must return a plexus status constant (or nothing)");
    }
    return static_cast<int>(lua_tointeger(L, first));
  }

  PluginConfig config_;
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
