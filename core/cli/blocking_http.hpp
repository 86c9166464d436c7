#pragma once
// A blocking HTTP exchange for the command-line tools (plexus receipt, plexus keys): libcurl's
// easy interface. Never used by the router itself, whose loops must not block.
#include <string>
#include <utility>
#include <vector>

namespace plexus::cli {

struct HttpAnswer {
  int status = 0;       // 0: no answer (see error)
  std::string body;
  std::string error;
};

HttpAnswer blocking_http(const std::string& method, const std::string& url,
                         const std::vector<std::pair<std::string, std::string>>& headers = {}, const std::string& body = "");

}  // namespace plexus::cli
