#pragma once
// The router's web pages and their scripts (the public receipt page), read into memory once when
// the router starts: serving them never touches a disk on an event loop.
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace plexus {

class StaticFiles {
 public:
  struct File {
    std::string body;
    std::string content_type;
  };

  // Every regular file under `root`, keyed by its path below it ("receipt/index.html"). Files
  // whose names start with a dot are left out. A missing root gives an empty set (the pages
  // then answer 503 and say so); an unreadable file throws std::runtime_error naming it.
  static std::shared_ptr<const StaticFiles> load(const std::string& root);

  // The file at `relative` ("receipt/receipt.js"); null when there is none. Never leaves the
  // root: "..", empty segments and dot files are not found.
  const File* find(std::string_view relative) const;
  bool empty() const { return files_.empty(); }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
  std::unordered_map<std::string, File> files_;
};

}  // namespace plexus
