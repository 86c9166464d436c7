#include "server/static_files.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace plexus {
namespace fs = std::filesystem;
namespace {

constexpr std::uintmax_t kMaxFileBytes = 8u << 20;    // a script, a page, a font
constexpr std::uintmax_t kMaxTotalBytes = 64u << 20;  // what the router keeps in memory

std::string content_type_of(const fs::path& file) {
  static const std::unordered_map<std::string, std::string> types = {
      {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
      {".json", "application/json"}, {".svg", "image/svg+xml"}, {".png", "image/png"},
      {".ico", "image/x-icon"}, {".woff2", "font/woff2"}, {".txt", "text/plain; charset=utf-8"},
      {".map", "application/json"}};
  auto found = types.find(file.extension().string());
  return found == types.end() ? "application/octet-stream" : found->second;
}

bool hidden(const fs::path& relative) {
  for (const auto& part : relative)
    if (!part.empty() && part.string()[0] == '.') return true;
  return false;
}

}  // namespace

std::shared_ptr<const StaticFiles> StaticFiles::load(const std::string& root) {
  auto set = std::make_shared<StaticFiles>();
  set->root_ = root;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return set;
  std::uintmax_t total = 0;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::none, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    fs::path relative = fs::relative(it->path(), root);
    if (hidden(relative)) continue;
    std::uintmax_t size = it->file_size();
    total += size;
    if (size > kMaxFileBytes || total > kMaxTotalBytes)
      throw std::runtime_error(it->path().string() + ": too large to serve from memory");
    std::ifstream in(it->path(), std::ios::binary);
    std::ostringstream body;
    body << in.rdbuf();
    if (!in) throw std::runtime_error(it->path().string() + ": cannot read it");
    set->files_.emplace(relative.generic_string(), File{body.str(), content_type_of(it->path())});
  }
  if (ec) throw std::runtime_error(root + ": cannot list it: " + ec.message());
  return set;
}

const StaticFiles::File* StaticFiles::find(std::string_view relative) const {
  // The map holds only what load() found below the root, so a key with ".." in it cannot match
  // anything outside; dot files were never loaded.
  auto found = files_.find(std::string(relative));
  return found == files_.end() ? nullptr : &found->second;
}

}  // namespace plexus
