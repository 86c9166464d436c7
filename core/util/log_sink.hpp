#pragma once
// Log lines to stderr, buffered: a loop under load writes its access lines with one write per
// turn of the loop instead of one per request. Each loop flushes before it sleeps (Router), so an
// idle router's lines appear at once; warnings and errors are flushed immediately.
#include <memory>

namespace spdlog {
class logger;
}

namespace plexus {

std::shared_ptr<spdlog::logger> make_buffered_stderr_logger(const char* name);

}  // namespace plexus
