#include "cluster/cluster_sync.hpp"

#include <algorithm>

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>

namespace plexus::cluster {
namespace {

// One reply, freed when it goes.
struct Reply {
  explicit Reply(void* r) : r(static_cast<redisReply*>(r)) {}
  ~Reply() {
    if (r) freeReplyObject(r);
  }
  Reply(const Reply&) = delete;
  Reply& operator=(const Reply&) = delete;
  redisReply* r;
  bool ok() const { return r && r->type != REDIS_REPLY_ERROR; }
  std::int64_t integer() const { return r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0; }
};

std::int64_t integer_of(redisContext* c, const char* fmt, const std::string& key, std::int64_t value) {
  Reply reply(redisCommand(c, fmt, key.c_str(), static_cast<long long>(value)));
  if (!reply.ok()) throw std::runtime_error(c->err ? c->errstr : "redis refused a command");
  return reply.integer();
}

// Adds what was counted since `pushed` to the total at `key` (expiring after two minutes), and
// answers the total. A total Redis no longer has (restarted) is seeded with all of `counted`.
// `pushed` moves with every command that succeeded, so a round cut short never counts twice.
std::int64_t add_counted(redisContext* c, const std::string& key, std::int64_t counted, std::int64_t& pushed) {
  std::int64_t all = counted;
  if (integer_of(c, "SETNX %s %lld", key, counted) == 1)
    pushed = counted;
  else
    all = integer_of(c, "INCRBY %s %lld", key, counted - pushed);
  pushed = counted;
  integer_of(c, "EXPIRE %s %lld", key, 120);
  return all;
}

}  // namespace

// Breakers open here go to Redis (scored by the wall-clock ms they close at); breakers open
// anywhere come back, and open here too until then.
void ClusterSync::sync_breakers(redisContext* c) {
  auto steady = std::chrono::steady_clock::now();
  auto wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto set = nodes_.snapshot();
  for (const auto& node : set->nodes())
    for (const auto& m : *node->models()) {
      if (m.stats->breaker(steady) != ModelStats::Breaker::kOpen) continue;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(m.stats->cooldown_until() - steady).count();
      if (left <= 0) continue;
      std::string member = node->id + "|" + m.id;
      Reply added(redisCommand(c, "ZADD plexus:breakers GT %lld %s", static_cast<long long>(wall_ms + left), member.c_str()));
      if (!added.ok()) throw std::runtime_error(c->err ? c->errstr : "redis refused ZADD");
    }
  Reply(redisCommand(c, "ZREMRANGEBYSCORE plexus:breakers -inf %lld", static_cast<long long>(wall_ms)));
  Reply open(redisCommand(c, "ZRANGEBYSCORE plexus:breakers %lld +inf WITHSCORES", static_cast<long long>(wall_ms)));
  if (!open.ok() || open.r->type != REDIS_REPLY_ARRAY) throw std::runtime_error(c->err ? c->errstr : "redis refused ZRANGEBYSCORE");
  for (std::size_t i = 0; i + 1 < open.r->elements; i += 2) {
    std::string member(open.r->element[i]->str, open.r->element[i]->len);
    long long closes = std::atoll(open.r->element[i + 1]->str);
    auto bar = member.find('|');
    if (bar == std::string::npos) continue;
    std::string node_id = member.substr(0, bar), model = member.substr(bar + 1);
    for (const auto& node : set->nodes()) {
      if (node->id != node_id) continue;
      for (const auto& m : *node->models())
        if (m.id == model) m.stats->open_as_peer_saw(steady + std::chrono::milliseconds(closes - wall_ms));
    }
  }
}

std::optional<RedisAddress> parse_redis_url(const std::string& url) {
  std::string rest = url.rfind("redis://", 0) == 0 ? url.substr(8) : url;
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  auto colon = rest.rfind(':');
  RedisAddress a;
  if (colon == std::string::npos) {
    if (rest.empty()) return std::nullopt;
    a.host = rest;
    return a;
  }
  a.host = rest.substr(0, colon);
  auto port = std::string_view(rest).substr(colon + 1);
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), a.port);
  if (a.host.empty() || ec != std::errc() || end != port.data() + port.size() || a.port < 1 || a.port > 65535) return std::nullopt;
  return a;
}

ClusterSync::ClusterSync(RedisAddress redis, std::chrono::milliseconds period, metering::RateLimits& limits,
                         metering::Budgets& budgets, NodeRegistry& nodes, std::string router_id)
    : redis_(std::move(redis)), period_(period), limits_(limits), budgets_(budgets), nodes_(nodes), router_id_(std::move(router_id)) {
  thread_ = std::thread([this] { run(); });
}

ClusterSync::~ClusterSync() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ClusterSync::advertise(std::string node_address) {
  std::lock_guard lock(routers_mu_);
  node_address_ = std::move(node_address);
}

std::vector<std::string> ClusterSync::peer_routers() const {
  std::lock_guard lock(routers_mu_);
  return peer_routers_;
}

// This router's node port goes in with an expiry a few sync periods ahead; the live ones come
// back (a router that stops renewing drops out by itself).
void ClusterSync::sync_routers(redisContext* c) {
  std::string mine;
  {
    std::lock_guard lock(routers_mu_);
    mine = node_address_;
  }
  auto wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  // Generous: a router whose syncs stall for a while (a loaded machine, Redis slow) must not
  // vanish from what joining nodes are told; one that is gone drops out within half a minute.
  long long expires = wall_ms + std::max<long long>(30000, 20 * period_.count());
  if (!mine.empty() && !Reply(redisCommand(c, "ZADD plexus:routers %lld %s", expires, mine.c_str())).ok())
    throw std::runtime_error(c->err ? c->errstr : "redis refused ZADD");
  Reply(redisCommand(c, "ZREMRANGEBYSCORE plexus:routers -inf %lld", static_cast<long long>(wall_ms)));
  Reply live(redisCommand(c, "ZRANGEBYSCORE plexus:routers %lld +inf", static_cast<long long>(wall_ms)));
  if (!live.ok() || live.r->type != REDIS_REPLY_ARRAY) throw std::runtime_error(c->err ? c->errstr : "redis refused ZRANGEBYSCORE");
  std::vector<std::string> peers;
  for (std::size_t i = 0; i < live.r->elements; ++i) {
    std::string address(live.r->element[i]->str, live.r->element[i]->len);
    if (address != mine) peers.push_back(std::move(address));
  }
  std::sort(peers.begin(), peers.end());  // Redis orders them by expiry, which moves every sync
  std::function<void(const std::vector<std::string>&)> tell;
  {
    std::lock_guard lock(routers_mu_);
    if (peers == peer_routers_) return;
    peer_routers_ = peers;
    tell = peers_changed_;
  }
  if (tell) tell(peers);
}

void ClusterSync::on_peers_changed(std::function<void(const std::vector<std::string>&)> fn) {
  std::lock_guard lock(routers_mu_);
  peers_changed_ = std::move(fn);
}

// Fields "node|model|router" hold "ttft_ms wall_ms". This router writes its fresh measures and
// reads the others' (younger than 10 s; older ones are deleted), averaged per (node, model).
void ClusterSync::sync_latency(redisContext* c) {
  constexpr long long kFreshMs = 10000;
  auto steady = std::chrono::steady_clock::now();
  long long wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto set = nodes_.snapshot();
  for (const auto& node : set->nodes())
    for (const auto& m : *node->models()) {
      double own = m.stats->own_ttft_ms(steady);
      if (own < 0) continue;
      std::string field = node->id + "|" + m.id + "|" + router_id_;
      std::string value = std::to_string(own) + " " + std::to_string(wall_ms);
      if (!Reply(redisCommand(c, "HSET plexus:ttft %s %s", field.c_str(), value.c_str())).ok())
        throw std::runtime_error(c->err ? c->errstr : "redis refused HSET");
    }
  Reply all(redisCommand(c, "HGETALL plexus:ttft"));
  if (!all.ok() || all.r->type != REDIS_REPLY_ARRAY) throw std::runtime_error(c->err ? c->errstr : "redis refused HGETALL");
  std::map<std::string, std::pair<double, int>> peers;  // "node|model" -> sum, count
  for (std::size_t i = 0; i + 1 < all.r->elements; i += 2) {
    std::string field(all.r->element[i]->str, all.r->element[i]->len);
    std::string value(all.r->element[i + 1]->str, all.r->element[i + 1]->len);
    double ttft = 0;
    long long at = 0;
    if (std::sscanf(value.c_str(), "%lf %lld", &ttft, &at) != 2 || wall_ms - at > 6 * kFreshMs) {
      Reply(redisCommand(c, "HDEL plexus:ttft %s", field.c_str()));
      continue;
    }
    auto last_bar = field.rfind('|');
    if (last_bar == std::string::npos || field.compare(last_bar + 1, std::string::npos, router_id_) == 0 || wall_ms - at > kFreshMs)
      continue;  // this router's own, or too old to stand in
    auto& p = peers[field.substr(0, last_bar)];
    p.first += ttft;
    ++p.second;
  }
  for (const auto& node : set->nodes())
    for (const auto& m : *node->models())
      if (auto it = peers.find(node->id + "|" + m.id); it != peers.end())
        m.stats->set_peer_ttft(it->second.first / it->second.second, steady + std::chrono::milliseconds(kFreshMs));
}

void ClusterSync::run() {
  redisContext* c = nullptr;
  auto backoff = std::chrono::milliseconds(100);
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    if (!c) {
      timeval timeout{1, 0};
      c = redisConnectWithTimeout(redis_.host.c_str(), redis_.port, timeout);
      if (c && !c->err) redisSetTimeout(c, timeout);
    }
    bool ok = c && !c->err && sync(c);
    if (ok && !connected_.exchange(true)) spdlog::info("cluster: in sync through redis at {}:{}", redis_.host, redis_.port);
    if (!ok) {
      if (connected_.exchange(false) || syncs_.load() == 0)
        spdlog::warn("cluster: redis at {}:{} unreachable ({}); this router counts alone until it is back", redis_.host,
                     redis_.port, c && c->err ? c->errstr : "no connection");
      if (c) redisFree(c);
      c = nullptr;
    }
    lock.lock();
    auto wait = ok ? period_ : backoff;
    backoff = ok ? std::chrono::milliseconds(100) : std::min(backoff * 2, std::chrono::milliseconds(2000));
    wake_.wait_for(lock, wait, [this] { return stopping_; });
  }
  if (c) redisFree(c);
}

// One round: this router's counts since the last round go to Redis' totals; the totals come back.
bool ClusterSync::sync(redisContext* c) {
  try {
    // The clock's minute, as the loops count it: a key this router has not used yet this minute
    // still learns what the others did, before its first request.
    std::int64_t minute =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count() / 60;
    for (auto& [key, e] : limits_.entries()) {
      bool mine = e->minute.load(std::memory_order_acquire) == minute;
      std::int64_t requests = mine ? e->requests.load(std::memory_order_relaxed) : 0;
      std::int64_t tokens = mine ? e->tokens.load(std::memory_order_relaxed) : 0;
      Pushed& p = pushed_limits_[key];
      if (p.minute != minute) p = {minute, 0, 0};
      std::string base = "plexus:rl:" + key + ":" + std::to_string(minute);
      std::int64_t all_requests = add_counted(c, base + ":requests", requests, p.requests);
      std::int64_t all_tokens = add_counted(c, base + ":tokens", tokens, p.tokens);
      e->remote_requests.store(std::max<std::int64_t>(0, all_requests - requests), std::memory_order_relaxed);
      e->remote_tokens.store(std::max<std::int64_t>(0, all_tokens - tokens), std::memory_order_relaxed);
      e->remote_minute.store(minute, std::memory_order_relaxed);
    }
    for (auto* e : budgets_.entries()) {
      std::string redis_key = "plexus:budget:" + e->key_id + ":spent_micros";
      std::int64_t now = e->spent_micros.load(std::memory_order_relaxed);
      // A Redis without the total (new, or restarted) is seeded with what this router knows of
      // the whole: the shared ledger's spending when it started (its counter began there), its
      // own since, and the others' as it last saw them. Otherwise only what is new goes in.
      auto it = pushed_spent_.find(e->key_id);
      bool seeded = integer_of(c, "SETNX %s %lld", redis_key, now + e->remote_micros.load(std::memory_order_relaxed)) == 1;
      if (seeded || it == pushed_spent_.end()) it = pushed_spent_.insert_or_assign(e->key_id, now).first;
      std::int64_t all = integer_of(c, "INCRBY %s %lld", redis_key, now - it->second);
      it->second = now;
      e->remote_micros.store(all - now, std::memory_order_relaxed);
    }
    sync_breakers(c);
    sync_routers(c);
    sync_latency(c);
  } catch (const std::exception& e) {
    return false;
  }
  syncs_.fetch_add(1);
  return true;
}

}  // namespace plexus::cluster
