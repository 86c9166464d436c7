// Lua plugins: the four hooks as global functions of a sandboxed script (lua_vm.hpp). Each event
// loop has its own instance, so a state is only ever used by one thread. The hooks see the host
// through views (lua_views.hpp).
#include <lua.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "config/schema.hpp"
#include "plugins/loaded_plugin.hpp"
#include "plugins/lua/lua_json.hpp"
#include "plugins/lua/lua_views.hpp"
#include "plugins/lua/lua_vm.hpp"
#include "plugins/plugin_log.hpp"

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

std::string read_source(const PluginConfig& config) {
  try {
    return read_file(config.file);
  } catch (const std::exception& e) {
    throw PluginLoadError(config.path + " (" + config.name + ", " + config.file + "): " + e.what());
  }
}

class LuaPlugin final : public Plugin {
 public:
  explicit LuaPlugin(PluginConfig config) : config_(std::move(config)) {
    vm_ = compile(config_.lua_source ? *config_.lua_source : read_source(config_));
  }

  unsigned hooks() const override { return hooks_; }

  RequestStatus on_request(RequestContext& ctx) override {
    int status = kContinue;
    guarded_run("on_request", ctx, [&](lua_State* L) {
      // Kept below the function, to read back after the call.
      if (!push_host_json(L, ctx.request_json())) throw PluginError("the request is not JSON");
      int req_index = lua_gettop(L);
      if (!vm_->push_global_function("on_request")) return;
      lua_pushvalue(L, req_index);
      lua::push_ctx(L, ctx, stamp(), vm_);
      vm_->call(2, 1);
      status = status_of(L, -1, "on_request", {kContinue, kModified, kRespond});
      if (status == kModified) ctx.set_request_json(host_json_of(L, req_index));
    });
    return status == kRespond ? RequestStatus::kRespond : RequestStatus::kContinue;
  }

  RouteStatus on_route(RouteContext& ctx) override {
    int status = kContinue;
    lua_Integer picked = 0;
    auto& cands = ctx.candidates();
    guarded_run("on_route", ctx, [&](lua_State* L) {
      if (!vm_->push_global_function("on_route")) return;
      lua::push_candidates(L, cands, stamp());  // scores and drops are written through the view
      lua::push_ctx(L, ctx, stamp(), vm_);
      vm_->call(2, 2);
      status = status_of(L, -2, "on_route", {kContinue, kPick});
      picked = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
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
        if (!push_host_json(L, ctx.chunk())) throw PluginError("the chunk is not JSON");
      int chunk_index = lua_gettop(L);
      if (!vm_->push_global_function("on_chunk")) return;
      lua_pushvalue(L, chunk_index);
      lua::push_ctx(L, ctx, stamp(), vm_);
      vm_->call(2, 1);
      status = status_of(L, -1, "on_chunk", {kContinue, kModified, kDrop});
      if (status == kModified) {
        if (ctx.end_of_stream()) throw PluginError("on_chunk: nothing to modify at end of stream; use ctx:insert");
        ctx.set_chunk(host_json_of(L, chunk_index));
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
      lua::push_ctx(L, ctx, stamp(), vm_);
      vm_->call(2, 0);
    });
  }

 private:
  std::shared_ptr<lua::Vm> compile(const std::string& source) {
    auto log = [to = plugin_logger(config_.name)](int level, const std::string& message) {
      to(static_cast<LogLevel>(std::clamp(level, 0, 3)), message);
    };
    std::shared_ptr<lua::Vm> vm;
    try {
      vm = std::make_shared<lua::Vm>(config_.file, source, config_.config_json,
                                     lua::Limits{config_.cpu_limit, config_.memory_limit_bytes}, log,
                                     lua::register_views);
    } catch (const std::exception& e) {
      throw PluginLoadError(config_.path + " (" + config_.name + ", " + config_.file + "): " + e.what());
    }
    apply_declared_schema(*vm);
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

  // A script that sets a global `schema` table gets its config checked against it and
  // plexus.config replaced by the checked one, defaults filled in (after its top level ran: read
  // plexus.config in the hooks). Without one, the config is handed over as written.
  void apply_declared_schema(lua::Vm& vm) {
    json declared;
    try {
      declared = vm.global_json("schema");
    } catch (const std::exception& e) {
      throw PluginLoadError(config_.path + " (" + config_.name + ", " + config_.file + "): schema: " + e.what());
    }
    if (declared.is_null()) return;
    ConfigSchema schema = config::schema_from_json(declared, config_.file + ": schema");
    vm.set_config(json::parse(checked_plugin_config(config_, schema)));
  }

  // Runs a hook's whole body in one protected call (see Vm::run), so no Lua error, budget or
  // memory failure can escape as a panic. The ctx methods stop working however the body ends.
  template <class Body>
  void guarded_run(const char* hook, HookContext& ctx, Body&& body) {
    running_call_ = ++calls_;
    struct Done {
      std::uint64_t& running;
      ~Done() { running = 0; }
    } done{running_call_};
    try {
      vm_->run(body);
    } catch (const std::exception& e) {
      throw PluginError(e.what());
    }
  }

  // A request or an answer parsed for Lua (its fields become Lua values when the script reads
  // them), and a changed one encoded back: the host's work, not charged to the script's CPU
  // budget (a large prompt would otherwise fail a cheap script).
  bool push_host_json(lua_State* L, std::string_view text) {
    lua::Vm::HostWork host(*vm_);
    return lua::push_json_text(L, text);
  }
  std::string host_json_of(lua_State* L, int index) {
    lua::Vm::HostWork host(*vm_);
    return lua::to_json(L, index).dump();
  }

  // The hook's status at `index`: nil counts as CONTINUE/UNCHANGED.
  static int status_of(lua_State* L, int index, const char* hook, std::initializer_list<int> allowed) {
    if (lua_isnil(L, index)) return kContinue;
    int status = lua_isinteger(L, index) ? static_cast<int>(lua_tointeger(L, index)) : -1;
    for (int a : allowed)
      if (a == status) return status;
    throw PluginError(std::string(hook) + " returned an unexpected value; return a plexus status constant (or nothing)");
  }

  lua::CallStamp stamp() const { return {running_call_, &running_call_}; }

  PluginConfig config_;
  std::uint64_t calls_ = 0;
  std::uint64_t running_call_ = 0;  // the hook call in progress; 0 between calls
  std::shared_ptr<lua::Vm> vm_;
  unsigned hooks_ = 0;
};

}  // namespace

void read_lua_sources(std::vector<PluginConfig>& configs) {
  for (auto& c : configs)
    if (c.type == "lua" && c.enabled) c.lua_source = std::make_shared<const std::string>(read_source(c));
}

LoadedPlugin load_lua_plugin(const PluginConfig& config) {
  auto plugin = std::make_shared<LuaPlugin>(config);
  LoadedPlugin loaded;
  loaded.config = config;
  loaded.id = config.name;
  loaded.version = "lua";
  loaded.hooks = plugin->hooks();
  loaded.plugin = plugin;
  return loaded;
}

}  // namespace plexus
