#pragma once
// Host names to addresses without blocking the event loop. Numeric hosts are answered at once;
// names go to getaddrinfo on a thread of the resolver's own (started on the first name), and
// the answer comes back through the loop's inbox. Answers are kept for a minute, so a loop
// resolves each backend's name once a minute at most, and only when it opens a connection.
#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace plexus {

class EventLoop;

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
};

class Resolver {
 public:
  using Addresses = std::vector<SocketAddress>;
  // `addresses` is empty when the name did not resolve; `error` then says why.
  using Done = std::function<void(const Addresses& addresses, const std::string& error)>;

  explicit Resolver(EventLoop& loop);
  ~Resolver();  // answers still on their way are dropped; a lookup in progress finishes alone
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Loop thread. Calls `done` before returning when the answer is known (a numeric host, or a
  // cached name), else later on the loop. Ports are left at 0: the caller sets its own.
  void resolve(const std::string& host, Done done);

  static constexpr std::chrono::seconds kKeepAnswers{60};

  struct Lookups;  // resolver.cc's: shared with the resolver thread

 private:
  struct Cached {
    Addresses addresses;
    std::chrono::steady_clock::time_point until;
  };
  void answered(const std::string& host, Addresses addresses, const std::string& error);

  EventLoop& loop_;
  std::shared_ptr<Lookups> lookups_;
  std::shared_ptr<Resolver*> self_;  // closures posted back check it: null once destroyed
  std::unordered_map<std::string, Cached> cache_;
  std::unordered_map<std::string, std::vector<Done>> waiting_;
};

}  // namespace plexus
