// What a Lua routing policy sees of the candidates: a view read on demand, iterated with ipairs,
// written only through score and dropped, and dead once its call has returned.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "plugins/loaded_plugin.hpp"

namespace plexus {
namespace {

class RouteCtx final : public RouteContext {
 public:
  std::string_view request_id() const override { return "req_views"; }
  std::string_view key_id() const override { return "key"; }
  std::string_view group() const override { return "public"; }
  std::chrono::steady_clock::time_point deadline() const override { return std::chrono::steady_clock::now(); }
  std::shared_ptr<void>& state() override { return state_; }
  std::string_view model() const override { return "m"; }
  std::vector<Candidate>& candidates() override { return cands; }
  void pick(std::size_t index) override { picked = static_cast<int>(index); }

  std::vector<Candidate> cands;
  int picked = -1;
  std::shared_ptr<void> state_;
};

RouteCtx three_candidates() {
  RouteCtx ctx;
  for (int i = 0; i < 3; ++i) {
    Candidate c;
    c.node = "node-" + std::to_string(i);
    c.model = "m";
    c.region = i == 1 ? "eu" : "us";
    c.hot = i != 2;
    c.in_flight = i;
    c.latency_p95_ms = 100.0 * (3 - i);
    c.price_input_per_1k = 0.5 + i;
    ctx.cands.push_back(c);
  }
  return ctx;
}

LoadedPlugin policy(const std::string& source) {
  // ctest runs each test in a process of its own, several at once: the pid keeps one test from
  // loading another's script (a counter alone gave every process the same first name).
  static int n = 0;
  auto file = std::filesystem::temp_directory_path() /
              ("plexus_views_test_" + std::to_string(::getpid()) + "_" + std::to_string(n++) + ".lua");
  std::ofstream(file) << source;
  PluginConfig c;
  c.path = "plugins[0]";
  c.name = "views";
  c.type = "lua";
  c.file = file.string();
  c.config_json = "{}";
  auto loaded = load_lua_plugin(c);
  std::filesystem::remove(file);
  return loaded;
}

TEST(LuaViews, IpairsVisitsEveryCandidateInOrderAndFieldsReadThrough) {
  auto p = policy(R"(
    local ipairs = ipairs  -- kept before the hooks run: still the one that knows candidates
    function on_route(cands, ctx)
      local seen = {}
      for i, c in ipairs(cands) do
        seen[#seen + 1] = c.node .. ":" .. tostring(c.hot) .. ":" .. c.in_flight .. ":" .. c.region
      end
      assert(#seen == #cands and #seen == 3, "visited " .. #seen)
      assert(table.concat(seen, ",") == "node-0:true:0:us,node-1:true:1:eu,node-2:false:2:us", table.concat(seen, ","))
      assert(cands[0] == nil and cands[4] == nil and cands.x == nil)
      assert(cands[1].latency_p95_ms == 300 and cands[3].price_input_per_1k == 2.5)
      assert(cands[1].no_such_field == nil and cands[1][1] == nil)
      local plain = {}
      for i, v in ipairs({10, 20, nil, 40}) do plain[#plain + 1] = v end
      assert(#plain == 2, "a plain table stops at its first hole")
      local ok, err = pcall(function() local f = ipairs() end)
      assert(not ok and err:find("bad argument #1 to 'ipairs'"), err)
      return plexus.PICK, 2
    end)");
  RouteCtx ctx = three_candidates();
  EXPECT_EQ(p.plugin->on_route(ctx), RouteStatus::kPick);
  EXPECT_EQ(ctx.picked, 1);
}

TEST(LuaViews, ScoreAndDroppedAreWrittenThroughAndNothingElse) {
  auto p = policy(R"(
    function on_route(cands, ctx)
      for _, c in ipairs(cands) do
        c.score = -c.latency_p95_ms
        if not c.hot then c.dropped = true end
      end
      assert(cands[2].score == -200 and cands[3].dropped)
      local ok, err = pcall(function() cands[1].price_input_per_1k = 0 end)
      assert(not ok and err:find("read-only but for score and dropped"), err)
      ok, err = pcall(function() cands[1] = {} end)
      assert(not ok and err:find("candidate list is read-only"), err)
    end)");
  RouteCtx ctx = three_candidates();
  EXPECT_EQ(p.plugin->on_route(ctx), RouteStatus::kContinue);
  EXPECT_EQ(ctx.cands[0].score, -300);
  EXPECT_EQ(ctx.cands[1].score, -200);
  EXPECT_FALSE(ctx.cands[1].dropped);
  EXPECT_TRUE(ctx.cands[2].dropped);
  EXPECT_EQ(ctx.cands[0].price_input_per_1k, 0.5);
}

TEST(LuaViews, ACandidateOrAListKeptPastItsCallIsRefusedNotFollowed) {
  for (const char* use : {"kept_one.node", "kept_list[1]", "#kept_list", "next_of(kept_list)"}) {
    auto p = policy(std::string(R"(
      local calls = 0
      function next_of(list) for _, c in ipairs(list) do return c end end
      function on_route(cands, ctx)
        calls = calls + 1
        if calls == 1 then kept_one, kept_list = cands[1], cands return end
        local _ = )") + use + R"(
      end)");
    RouteCtx first = three_candidates();
    EXPECT_EQ(p.plugin->on_route(first), RouteStatus::kContinue);
    RouteCtx second = three_candidates();
    try {
      p.plugin->on_route(second);
      ADD_FAILURE() << use << " was allowed";
    } catch (const PluginError& e) {
      EXPECT_NE(std::string(e.what()).find("used after their hook returned"), std::string::npos) << use << ": " << e.what();
    }
  }
}

TEST(LuaViews, PlexusNullIsNoCandidate) {
  auto p = policy(R"(
    function on_route(cands, ctx)
      local ok, err = pcall(function() return plexus.null.node end)
      assert(not ok and err:find("attempt to index plexus.null"), err)
      return plexus.PICK, 1
    end)");
  RouteCtx ctx = three_candidates();
  EXPECT_EQ(p.plugin->on_route(ctx), RouteStatus::kPick);
}

}  // namespace
}  // namespace plexus
