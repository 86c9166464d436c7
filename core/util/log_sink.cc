#include "util/log_sink.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <string>

namespace plexus {
namespace {

class BufferedStderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    buffer_.append(formatted.data(), formatted.size());
    if (buffer_.size() >= kMaxBuffered) flush_();
  }
  void flush_() override {
    std::size_t done = 0;
    while (done < buffer_.size()) {
      ssize_t n = ::write(STDERR_FILENO, buffer_.data() + done, buffer_.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // nowhere to write: drop rather than block a loop
      done += static_cast<std::size_t>(n);
    }
    buffer_.clear();
  }

 private:
  static constexpr std::size_t kMaxBuffered = 64u << 10;
  std::string buffer_;
};

}  // namespace

std::shared_ptr<spdlog::logger> make_buffered_stderr_logger(const char* name) {
  auto logger = std::make_shared<spdlog::logger>(name, std::make_shared<BufferedStderrSink>());
  logger->flush_on(spdlog::level::warn);
  return logger;
}

}  // namespace plexus
