#include "plugins/lua/lua_views.hpp"

#include <lua.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>

#include "plugins/lua/lua_vm.hpp"

namespace plexus::lua {
namespace {

constexpr const char* kCtxMeta = "plexus.ctx";
constexpr const char* kCandsMeta = "plexus.candidates";
constexpr const char* kCandMeta = "plexus.candidate";
constexpr const char* kLiveCandidates = "plexus.live_candidates";
constexpr int kRespond = 2;  // plexus.RESPOND

struct CtxView {
  HookContext* ctx;
  CallStamp stamp;
  const std::shared_ptr<Vm>* vm;
};

struct CandsView {
  std::vector<Candidate>* candidates;
  CallStamp stamp;
};

// The on_route call in progress, one per state (an upvalue of the candidate metamethods).
struct LiveCandidates {
  std::vector<Candidate>* candidates = nullptr;
  CallStamp stamp{0, nullptr};
};

// A candidate is a light userdata that encodes its call and its index, never an address: so
// `cands[i]` allocates nothing (a full userdata per candidate was most of a 1,000-candidate
// policy's time), and a candidate kept past its call is recognised and refused, not followed.
// The low bit marks a candidate: other light userdata (plexus.null) are aligned addresses.
constexpr unsigned kIndexBits = 24;
constexpr std::uint64_t kCallMask = (std::uint64_t{1} << (63 - kIndexBits)) - 1;
void* candidate_token(std::uint64_t call, std::size_t index) {
  return reinterpret_cast<void*>(static_cast<std::uintptr_t>((((call & kCallMask) << kIndexBits) | index) << 1 | 1));
}

void check_live(lua_State* L, const CallStamp& s) {
  if (*s.running != s.call) luaL_error(L, "ctx or candidates used after their hook returned");
}

// A request's state table for one plugin, kept in that plugin's Lua registry while the request
// lives (the exchange holds it in the plugin's state slot).
struct RequestState {
  std::shared_ptr<Vm> vm;
  int ref = LUA_NOREF;
  ~RequestState() {
    if (vm && vm->state()) luaL_unref(vm->state(), LUA_REGISTRYINDEX, ref);
  }
};

// ---- ctx ----------------------------------------------------------------------------------

HookContext& live_ctx(lua_State* L) {
  auto* v = static_cast<CtxView*>(luaL_checkudata(L, 1, kCtxMeta));
  check_live(L, v->stamp);
  return *v->ctx;
}

template <class T>
T& live_ctx_as(lua_State* L) {
  auto* ctx = dynamic_cast<T*>(&live_ctx(L));
  if (!ctx) luaL_error(L, "this ctx method is not available in this hook");
  return *ctx;
}

std::string field_string(lua_State* L, int table, const char* key, const char* fallback) {
  lua_getfield(L, table, key);
  std::string out = lua_isstring(L, -1) ? lua_tostring(L, -1) : fallback;
  lua_pop(L, 1);
  return out;
}

// A table argument as JSON text; a value JSON cannot hold is the script's error, with its reason.
std::string json_arg(lua_State* L, int index) {
  std::string text;
  bool ok = true;
  std::string why;
  try {
    text = to_json(L, index).dump();
  } catch (const std::exception& e) {
    ok = false;
    why = e.what();
  }
  if (!ok) luaL_error(L, "%s", why.c_str());
  return text;
}

int ctx_reject(lua_State* L) {
  auto& ctx = live_ctx_as<RequestContext>(L);
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
  auto& ctx = live_ctx_as<RequestContext>(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  ctx.respond(json_arg(L, 2));
  lua_pushinteger(L, kRespond);
  return 1;
}

int ctx_set_response_header(lua_State* L) {
  live_ctx_as<RequestContext>(L).set_response_header(luaL_checkstring(L, 2), luaL_checkstring(L, 3));
  return 0;
}

int ctx_set_upstream_header(lua_State* L) {
  live_ctx_as<RequestContext>(L).set_upstream_header(luaL_checkstring(L, 2), luaL_checkstring(L, 3));
  return 0;
}

int ctx_insert(lua_State* L) {
  auto& ctx = live_ctx_as<ChunkContext>(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  ctx.insert(json_arg(L, 2));
  return 0;
}

int ctx_add_field(lua_State* L) {
  auto& ctx = live_ctx_as<CompleteContext>(L);
  std::string key = luaL_checkstring(L, 2);
  luaL_checkany(L, 3);
  ctx.add_field(key, json_arg(L, 3));
  return 0;
}

int ctx_add_header(lua_State* L) {
  live_ctx_as<CompleteContext>(L).add_header(luaL_checkstring(L, 2), luaL_checkstring(L, 3));
  return 0;
}

void push_view(lua_State* L, std::string_view s) { lua_pushlstring(L, s.data(), s.size()); }

// The key a script indexes a view with; empty when it is not a string (or a number).
std::string_view key_at(lua_State* L, int index) {
  std::size_t n = 0;
  const char* k = lua_tolstring(L, index, &n);
  return k ? std::string_view(k, n) : std::string_view();
}

void push_state(lua_State* L, CtxView& v) {
  auto& slot = v.ctx->state();
  auto* ref = static_cast<RequestState*>(slot.get());
  if (!ref || ref->vm != *v.vm) {  // first use, or the plugin was reloaded since
    auto fresh = std::make_shared<RequestState>();
    fresh->vm = *v.vm;
    lua_newtable(L);
    fresh->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    slot = fresh;
    ref = fresh.get();
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref->ref);
}

// ctx's names, by number: one look-up of the (interned) key in ctx_index's upvalue table instead
// of comparing it with every name (and a dynamic_cast per name) on each read.
enum CtxField : lua_Integer {
  kMethodReject = 1, kMethodRespond, kSetUpstreamHeader, kSetResponseHeader, kInsert, kAddField, kAddHeader,
  kRequestId, kKeyId, kGroupName, kState, kModelName, kEndOfStream, kWhole
};
constexpr std::pair<const char*, CtxField> kCtxFields[] = {
    {"reject", kMethodReject}, {"respond", kMethodRespond}, {"set_upstream_header", kSetUpstreamHeader},
    {"set_response_header", kSetResponseHeader}, {"insert", kInsert}, {"add_field", kAddField},
    {"add_header", kAddHeader}, {"request_id", kRequestId}, {"key_id", kKeyId}, {"group", kGroupName},
    {"state", kState}, {"model", kModelName}, {"end_of_stream", kEndOfStream}, {"whole", kWhole}};

// A metamethod of ctx's metatable: Lua calls it on a ctx view only (see cands_index).
int ctx_index(lua_State* L) {
  auto* v = static_cast<CtxView*>(lua_touserdata(L, 1));
  check_live(L, v->stamp);
  HookContext& ctx = *v->ctx;
  lua_pushvalue(L, 2);
  lua_Integer field = lua_rawget(L, lua_upvalueindex(1)) == LUA_TNUMBER ? lua_tointeger(L, -1) : 0;
  switch (field) {
    case kMethodReject: lua_pushcfunction(L, ctx_reject); break;
    case kMethodRespond: lua_pushcfunction(L, ctx_respond); break;
    case kSetUpstreamHeader: lua_pushcfunction(L, ctx_set_upstream_header); break;
    case kSetResponseHeader: lua_pushcfunction(L, ctx_set_response_header); break;
    case kInsert: lua_pushcfunction(L, ctx_insert); break;
    case kAddField: lua_pushcfunction(L, ctx_add_field); break;
    case kAddHeader: lua_pushcfunction(L, ctx_add_header); break;
    case kRequestId: push_view(L, ctx.request_id()); break;
    case kKeyId: push_view(L, ctx.key_id()); break;
    case kGroupName: push_view(L, ctx.group()); break;
    case kState: push_state(L, *v); break;
    case kModelName:
      if (auto* route = dynamic_cast<RouteContext*>(&ctx)) push_view(L, route->model());
      else lua_pushnil(L);
      break;
    case kEndOfStream:
    case kWhole:
      if (auto* chunk = dynamic_cast<ChunkContext*>(&ctx)) lua_pushboolean(L, field == kWhole ? chunk->whole() : chunk->end_of_stream());
      else lua_pushnil(L);
      break;
    default: lua_pushnil(L);
  }
  return 1;
}

int read_only(lua_State* L) {
  return luaL_error(L, "ctx is read-only; keep your own values in ctx.state");
}

// ---- candidates ---------------------------------------------------------------------------

int cands_len(lua_State* L) {
  auto* v = static_cast<CandsView*>(luaL_checkudata(L, 1, kCandsMeta));
  check_live(L, v->stamp);
  lua_pushinteger(L, static_cast<lua_Integer>(v->candidates->size()));
  return 1;
}

// Metamethods of a view are only ever called by Lua on that view (scripts cannot reach a
// metatable: no getmetatable, no debug), so the hot ones skip luaL_checkudata's look-up of the
// metatable by name.
int cands_index(lua_State* L) {
  auto* v = static_cast<CandsView*>(lua_touserdata(L, 1));
  check_live(L, v->stamp);
  lua_Integer i = lua_isinteger(L, 2) ? lua_tointeger(L, 2) : 0;
  if (i < 1 || i > static_cast<lua_Integer>(v->candidates->size())) {
    lua_pushnil(L);  // ends ipairs
    return 1;
  }
  lua_pushlightuserdata(L, candidate_token(v->stamp.call, static_cast<std::size_t>(i - 1)));
  return 1;
}

int cands_read_only(lua_State* L) {
  return luaL_error(L, "the candidate list is read-only; set a candidate's score or dropped");
}

// The candidate a token names, if its call is the one running; upvalue 2 is the state's
// LiveCandidates.
Candidate& live_cand(lua_State* L) {
  auto token = reinterpret_cast<std::uintptr_t>(lua_touserdata(L, 1));
  if (lua_type(L, 1) != LUA_TLIGHTUSERDATA || !(token & 1)) luaL_error(L, "attempt to index plexus.null");
  const auto& live = *static_cast<const LiveCandidates*>(lua_touserdata(L, lua_upvalueindex(2)));
  std::uint64_t bits = token >> 1;
  std::size_t index = bits & ((std::size_t{1} << kIndexBits) - 1);
  if (!live.candidates || *live.stamp.running != live.stamp.call || (bits >> kIndexBits) != (live.stamp.call & kCallMask) ||
      index >= live.candidates->size())
    luaL_error(L, "ctx or candidates used after their hook returned");
  return (*live.candidates)[index];
}

// A candidate's readable fields, by number: cand_index finds the number with one lookup of the
// (interned) key in its upvalue table, instead of comparing the key with every name.
enum CandField : lua_Integer {
  kNode = 1, kHealthy, kHot, kInFlight, kP50, kP95, kPriceIn, kPriceOut, kScore, kDropped, kModel, kGroup, kRegion
};
constexpr std::pair<const char*, CandField> kCandFields[] = {
    {"node", kNode}, {"healthy", kHealthy}, {"hot", kHot}, {"in_flight", kInFlight},
    {"latency_p50_ms", kP50}, {"latency_p95_ms", kP95}, {"price_input_per_1k", kPriceIn},
    {"price_output_per_1k", kPriceOut}, {"score", kScore}, {"dropped", kDropped},
    {"model", kModel}, {"group", kGroup}, {"region", kRegion}};

int cand_index(lua_State* L) {
  Candidate& c = live_cand(L);
  lua_pushvalue(L, 2);
  lua_Integer field = lua_rawget(L, lua_upvalueindex(1)) == LUA_TNUMBER ? lua_tointeger(L, -1) : 0;
  switch (field) {
    case kNode: push_view(L, c.node); break;
    case kHealthy: lua_pushboolean(L, c.healthy); break;
    case kHot: lua_pushboolean(L, c.hot); break;
    case kInFlight: lua_pushinteger(L, c.in_flight); break;
    case kP50: lua_pushnumber(L, c.latency_p50_ms); break;
    case kP95: lua_pushnumber(L, c.latency_p95_ms); break;
    case kPriceIn: lua_pushnumber(L, c.price_input_per_1k); break;
    case kPriceOut: lua_pushnumber(L, c.price_output_per_1k); break;
    case kScore: lua_pushnumber(L, c.score); break;
    case kDropped: lua_pushboolean(L, c.dropped); break;
    case kModel: push_view(L, c.model); break;
    case kGroup: push_view(L, c.group); break;
    case kRegion: push_view(L, c.region); break;
    default: lua_pushnil(L);
  }
  return 1;
}

int cand_newindex(lua_State* L) {
  Candidate& c = live_cand(L);
  std::string_view key = key_at(L, 2);
  if (key == "score") {
    c.score = luaL_checknumber(L, 3);
  } else if (key == "dropped") {
    c.dropped = lua_toboolean(L, 3);
  } else {
    return luaL_error(L, "a candidate's fields are read-only but for score and dropped");
  }
  return 0;
}

void new_meta(lua_State* L, const char* name, std::initializer_list<std::pair<const char*, lua_CFunction>> fns) {
  luaL_newmetatable(L, name);
  for (const auto& [event, fn] : fns) {
    lua_pushcfunction(L, fn);
    lua_setfield(L, -2, event);
  }
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");  // getmetatable (not in the sandbox anyway) sees nothing
  lua_pop(L, 1);
}

}  // namespace

void register_views(lua_State* L) {
  new_meta(L, kCtxMeta, {{"__newindex", read_only}});
  luaL_getmetatable(L, kCtxMeta);
  lua_createtable(L, 0, static_cast<int>(std::size(kCtxFields)));
  for (const auto& [name, field] : kCtxFields) {
    lua_pushinteger(L, field);
    lua_setfield(L, -2, name);
  }
  lua_pushcclosure(L, ctx_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  new_meta(L, kCandsMeta, {{"__index", cands_index}, {"__len", cands_len}, {"__newindex", cands_read_only}});
  // Candidates are light userdata (see candidate_token): the metatable is that type's, shared
  // by every light userdata of the state.
  luaL_newmetatable(L, kCandMeta);
  lua_createtable(L, 0, static_cast<int>(std::size(kCandFields)));
  for (const auto& [name, field] : kCandFields) {
    lua_pushinteger(L, field);
    lua_setfield(L, -2, name);
  }
  auto* live = static_cast<LiveCandidates*>(lua_newuserdatauv(L, sizeof(LiveCandidates), 0));
  new (live) LiveCandidates{};
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, kLiveCandidates);
  lua_pushcclosure(L, cand_index, 2);
  lua_setfield(L, -2, "__index");
  lua_pushnil(L);  // upvalue 1 unused by __newindex
  lua_getfield(L, LUA_REGISTRYINDEX, kLiveCandidates);
  lua_pushcclosure(L, cand_newindex, 2);
  lua_setfield(L, -2, "__newindex");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pushlightuserdata(L, nullptr);
  lua_pushvalue(L, -2);
  lua_setmetatable(L, -2);
  lua_pop(L, 2);
}

void push_ctx(lua_State* L, HookContext& ctx, CallStamp stamp, const std::shared_ptr<Vm>& vm) {
  auto* v = static_cast<CtxView*>(lua_newuserdatauv(L, sizeof(CtxView), 0));
  *v = CtxView{&ctx, stamp, &vm};
  luaL_setmetatable(L, kCtxMeta);
}

void push_candidates(lua_State* L, std::vector<Candidate>& candidates, CallStamp stamp) {
  lua_getfield(L, LUA_REGISTRYINDEX, kLiveCandidates);
  *static_cast<LiveCandidates*>(lua_touserdata(L, -1)) = LiveCandidates{&candidates, stamp};
  lua_pop(L, 1);
  auto* v = static_cast<CandsView*>(lua_newuserdatauv(L, sizeof(CandsView), 0));
  *v = CandsView{&candidates, stamp};
  luaL_setmetatable(L, kCandsMeta);
}

}  // namespace plexus::lua
