#include "plugins/lua/lua_views.hpp"

#include <lua.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>

#include "plugins/lua/lua_extras.hpp"
#include "plugins/lua/lua_json.hpp"
#include "plugins/lua/lua_vm.hpp"

namespace plexus::lua {
namespace {

constexpr const char* kCtxMeta = "plexus.ctx";
constexpr const char* kCandsMeta = "plexus.candidates";
constexpr const char* kCandMeta = "plexus.candidate";
constexpr const char* kViewsData = "plexus.views";
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

// The on_route call in progress, one per state.
struct LiveCandidates {
  std::vector<Candidate>* candidates = nullptr;
  CallStamp stamp{0, nullptr};
};

// A view's field names, found by the address of the key string: Lua interns short strings, so
// every `c.hot` in a state indexes with the same string object, and the names are anchored in
// the registry so their addresses stay theirs. One multiply and a probe, where a look-up in a
// Lua table took three API calls per field read.
class FieldIndex {
 public:
  void add(const char* interned, int field) {
    std::size_t s = slot(interned);
    while (keys_[s]) s = (s + 1) % kSlots;
    keys_[s] = interned;
    fields_[s] = field;
  }
  // 0 when `key` (lua_tolstring's result, null for a key that is no string) is not a field.
  int find(const char* key) const {
    if (!key) return 0;
    for (std::size_t s = slot(key); keys_[s]; s = (s + 1) % kSlots)
      if (keys_[s] == key) return fields_[s];
    return 0;
  }

 private:
  static constexpr std::size_t kSlots = 64;  // more than twice the names of any view
  static std::size_t slot(const char* p) {
    return static_cast<std::size_t>((reinterpret_cast<std::uintptr_t>(p) >> 4) * 0x9E3779B97F4A7C15ull >> 58);
  }
  const char* keys_[kSlots] = {};
  int fields_[kSlots] = {};
};

}  // namespace

// Per state, in a userdata anchored in the registry; reached through the state's extras.
struct ViewsData {
  LiveCandidates live;
  FieldIndex cand_fields;
  FieldIndex ctx_fields;
};

namespace {

ViewsData& views_of(lua_State* L) { return *extras_of(L).views; }

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

void push_state(lua_State* L, CtxView& v) {
  auto& slot = v.ctx->state();
  auto* ref = static_cast<RequestState*>(slot.get());
  if (!ref) {  // first use in this request (the slot is this plugin's, in the request's own pipeline)
    auto fresh = std::make_shared<RequestState>();
    fresh->vm = *v.vm;
    lua_newtable(L);
    fresh->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    slot = fresh;
    ref = fresh.get();
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref->ref);
}

// ctx's names, by number: one look-up of the (interned) key's address instead of comparing it with
// every name (and a dynamic_cast per name) on each read.
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
  int field = views_of(L).ctx_fields.find(lua_tolstring(L, 2, nullptr));
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
  lua_Integer i = lua_tointegerx(L, 2, nullptr);  // 0 for a key that is no integer
  if (i < 1 || i > static_cast<lua_Integer>(v->candidates->size())) {
    lua_pushnil(L);  // ends ipairs
    return 1;
  }
  lua_pushlightuserdata(L, candidate_token(v->stamp.call, static_cast<std::size_t>(i - 1)));
  return 1;
}

// ipairs(cands)'s step, a generic for's iterator: what ipairs' own step does through
// cands_index, without the second call and the metamethod look-up.
int cands_next(lua_State* L) {
  auto* v = static_cast<CandsView*>(lua_touserdata(L, 1));
  check_live(L, v->stamp);
  lua_Integer i = lua_tointegerx(L, 2, nullptr) + 1;
  if (i < 1 || i > static_cast<lua_Integer>(v->candidates->size())) return 0;  // ends the loop
  lua_pushinteger(L, i);
  lua_pushlightuserdata(L, candidate_token(v->stamp.call, static_cast<std::size_t>(i - 1)));
  return 2;
}

// The sandbox's ipairs: what the standard one returns (its step function is upvalue 1), with
// cands_next as the step for a candidate list.
int views_ipairs(lua_State* L) {
  luaL_checkany(L, 1);
  if (luaL_testudata(L, 1, kCandsMeta))
    lua_pushcfunction(L, cands_next);
  else
    lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  lua_pushinteger(L, 0);
  return 3;
}

int cands_read_only(lua_State* L) {
  return luaL_error(L, "the candidate list is read-only; set a candidate's score or dropped");
}

// The candidate a token names, if its call is the one running. Lua calls the candidate
// metamethods on light userdata only (theirs is that type's metatable), and the only other light
// userdata a script holds is plexus.null, at an even address.
Candidate& live_cand(lua_State* L, const LiveCandidates& live) {
  auto token = reinterpret_cast<std::uintptr_t>(lua_touserdata(L, 1));
  if (!(token & 1)) luaL_error(L, "attempt to index plexus.null");
  std::uint64_t bits = token >> 1;
  std::size_t index = bits & ((std::size_t{1} << kIndexBits) - 1);
  if (!live.candidates || *live.stamp.running != live.stamp.call || (bits >> kIndexBits) != (live.stamp.call & kCallMask) ||
      index >= live.candidates->size())
    luaL_error(L, "ctx or candidates used after their hook returned");
  return (*live.candidates)[index];
}

// A candidate's fields, by number: found with one look-up of the (interned) key's address,
// instead of comparing the key with every name.
enum CandField : lua_Integer {
  kNode = 1, kHealthy, kHot, kInFlight, kP50, kP95, kPriceIn, kPriceOut, kScore, kDropped, kModel, kGroup, kRegion
};
constexpr std::pair<const char*, CandField> kCandFields[] = {
    {"node", kNode}, {"healthy", kHealthy}, {"hot", kHot}, {"in_flight", kInFlight},
    {"latency_p50_ms", kP50}, {"latency_p95_ms", kP95}, {"price_input_per_1k", kPriceIn},
    {"price_output_per_1k", kPriceOut}, {"score", kScore}, {"dropped", kDropped},
    {"model", kModel}, {"group", kGroup}, {"region", kRegion}};

int cand_index(lua_State* L) {
  ViewsData& views = views_of(L);
  Candidate& c = live_cand(L, views.live);
  switch (views.cand_fields.find(lua_tolstring(L, 2, nullptr))) {
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
  ViewsData& views = views_of(L);
  Candidate& c = live_cand(L, views.live);
  switch (views.cand_fields.find(lua_tolstring(L, 2, nullptr))) {
    case kScore: c.score = luaL_checknumber(L, 3); break;
    case kDropped: c.dropped = lua_toboolean(L, 3); break;
    default: return luaL_error(L, "a candidate's fields are read-only but for score and dropped");
  }
  return 0;
}

// Returns the metatable's registry slot (see set_metatable_at).
int new_meta(lua_State* L, const char* name, std::initializer_list<std::pair<const char*, lua_CFunction>> fns) {
  luaL_newmetatable(L, name);
  for (const auto& [event, fn] : fns) {
    lua_pushcfunction(L, fn);
    lua_setfield(L, -2, event);
  }
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");  // getmetatable (not in the sandbox anyway) sees nothing
  int ref = anchor(L);
  lua_pop(L, 1);
  return ref;
}

// Interns each name, anchors it in `names` (a table on the stack) and indexes its address.
template <class Field, std::size_t N>
void index_names(lua_State* L, int names, FieldIndex& index, const std::pair<const char*, Field> (&fields)[N]) {
  for (const auto& [name, field] : fields) {
    index.add(lua_pushstring(L, name), field);
    lua_rawseti(L, names, static_cast<lua_Integer>(lua_rawlen(L, names)) + 1);
  }
}

}  // namespace

void register_views(lua_State* L, int env) {
  lua_getfield(L, env, "ipairs");  // the standard ipairs' step function, from one call
  lua_newtable(L);
  lua_call(L, 1, 1);
  lua_pushcclosure(L, views_ipairs, 1);
  lua_setfield(L, env, "ipairs");

  auto* views = static_cast<ViewsData*>(lua_newuserdatauv(L, sizeof(ViewsData), 1));
  new (views) ViewsData{};
  lua_newtable(L);
  index_names(L, lua_gettop(L), views->cand_fields, kCandFields);
  index_names(L, lua_gettop(L), views->ctx_fields, kCtxFields);
  lua_setiuservalue(L, -2, 1);  // the names live as long as the data that holds their addresses
  lua_setfield(L, LUA_REGISTRYINDEX, kViewsData);
  extras_of(L).views = views;

  extras_of(L).ctx_meta = new_meta(L, kCtxMeta, {{"__index", ctx_index}, {"__newindex", read_only}});
  extras_of(L).cands_meta =
      new_meta(L, kCandsMeta, {{"__index", cands_index}, {"__len", cands_len}, {"__newindex", cands_read_only}});
  // Candidates are light userdata (see candidate_token): the metatable is that type's, shared
  // by every light userdata of the state.
  int cand_meta = new_meta(L, kCandMeta, {{"__index", cand_index}, {"__newindex", cand_newindex}});
  lua_pushlightuserdata(L, nullptr);
  set_metatable_at(L, cand_meta);
  lua_pop(L, 1);
}

void push_ctx(lua_State* L, HookContext& ctx, CallStamp stamp, const std::shared_ptr<Vm>& vm) {
  auto* v = static_cast<CtxView*>(lua_newuserdatauv(L, sizeof(CtxView), 0));
  *v = CtxView{&ctx, stamp, &vm};
  set_metatable_at(L, extras_of(L).ctx_meta);
}

void push_candidates(lua_State* L, std::vector<Candidate>& candidates, CallStamp stamp) {
  views_of(L).live = LiveCandidates{&candidates, stamp};
  auto* v = static_cast<CandsView*>(lua_newuserdatauv(L, sizeof(CandsView), 0));
  *v = CandsView{&candidates, stamp};
  set_metatable_at(L, extras_of(L).cands_meta);
}

}  // namespace plexus::lua
