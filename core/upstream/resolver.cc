#include "upstream/resolver.hpp"

#include <arpa/inet.h>
#include <netdb.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "loop/event_loop.hpp"

namespace plexus {

// The queue between the loop and the resolver thread. The thread holds it too, so it can end
// on its own after the Resolver is gone (getaddrinfo cannot be interrupted).
struct Resolver::Lookups {
  std::mutex mu;
  std::condition_variable wake;
  std::deque<std::string> queue;
  EventLoop* loop = nullptr;  // null once the Resolver is destroyed: answers are dropped
  std::function<void(std::string, Addresses, std::string)> deliver;  // runs on the loop
  bool started = false;
};

namespace {

bool numeric(const std::string& host, Resolver::Addresses& out) {
  SocketAddress a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    a.length = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    a.length = sizeof(sockaddr_in6);
  } else {
    return false;
  }
  out.push_back(a);
  return true;
}

void lookup(const std::string& host, Resolver::Addresses& out, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0) {
    error = "could not resolve host '" + host + "': " + gai_strerror(rc);
    return;
  }
  for (addrinfo* ai = found; ai; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    SocketAddress a;
    std::memcpy(&a.storage, ai->ai_addr, ai->ai_addrlen);
    a.length = ai->ai_addrlen;
    out.push_back(a);
  }
  freeaddrinfo(found);
  if (out.empty()) error = "host '" + host + "' has no address";
}

void run_lookups(std::shared_ptr<Resolver::Lookups> lookups);

}  // namespace

Resolver::Resolver(EventLoop& loop)
    : loop_(loop), lookups_(std::make_shared<Lookups>()), self_(std::make_shared<Resolver*>(this)) {
  lookups_->loop = &loop;
  std::weak_ptr<Resolver*> self = self_;
  lookups_->deliver = [self](std::string host, Addresses addresses, std::string error) {
    if (auto alive = self.lock(); alive && *alive) (*alive)->answered(host, std::move(addresses), error);
  };
}

Resolver::~Resolver() {
  *self_ = nullptr;
  std::lock_guard lock(lookups_->mu);
  lookups_->loop = nullptr;
  lookups_->queue.clear();
  lookups_->wake.notify_all();
}

void Resolver::resolve(const std::string& host, Done done) {
  Addresses addresses;
  if (numeric(host, addresses)) return done(addresses, "");
  auto now = std::chrono::steady_clock::now();
  if (auto it = cache_.find(host); it != cache_.end()) {
    if (it->second.until > now) return done(it->second.addresses, "");
    cache_.erase(it);
  }
  auto& waiters = waiting_[host];
  waiters.push_back(std::move(done));
  if (waiters.size() > 1) return;  // a lookup of that name is on its way
  std::lock_guard lock(lookups_->mu);
  lookups_->queue.push_back(host);
  if (!lookups_->started) {
    lookups_->started = true;
    std::thread(run_lookups, lookups_).detach();
  }
  lookups_->wake.notify_one();
}

void Resolver::answered(const std::string& host, Addresses addresses, const std::string& error) {
  if (!addresses.empty()) cache_[host] = {addresses, std::chrono::steady_clock::now() + kKeepAnswers};
  auto it = waiting_.find(host);
  if (it == waiting_.end()) return;
  auto waiters = std::move(it->second);
  waiting_.erase(it);
  for (auto& done : waiters) done(addresses, error);
}

namespace {

void run_lookups(std::shared_ptr<Resolver::Lookups> lookups) {
  std::unique_lock lock(lookups->mu);
  while (true) {
    lookups->wake.wait(lock, [&] { return !lookups->queue.empty() || !lookups->loop; });
    if (!lookups->loop) return;
    std::string host = std::move(lookups->queue.front());
    lookups->queue.pop_front();
    lock.unlock();
    Resolver::Addresses addresses;
    std::string error;
    lookup(host, addresses, error);
    lock.lock();
    if (!lookups->loop) return;
    lookups->loop->post([deliver = lookups->deliver, host = std::move(host), addresses = std::move(addresses), error = std::move(error)]() mutable {
      deliver(std::move(host), std::move(addresses), std::move(error));
    });
  }
}

}  // namespace
}  // namespace plexus
