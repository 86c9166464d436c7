#include "gpu_metrics.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <thread>

extern char** environ;

namespace plexus::node {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr auto kToolTimeout = std::chrono::milliseconds(3000);
constexpr std::int64_t kBytesPerMib = 1024 * 1024;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// nvidia-smi writes "[N/A]", "[Not Supported]", "[Unknown Error]", "[Insufficient Permissions]"...
// for what it cannot read; an empty field (seen with mismatched drivers) means the same.
bool is_placeholder(std::string_view field) { return field.empty() || field.front() == '['; }

// A whole-field number, with the unit nvidia-smi adds when "nounits" was forgotten ("37 %",
// "1234 MiB"). Anything else makes the field, and so the line, malformed.
template <class T>
bool parse_number(std::string_view field, T& out) {
  const char* end = field.data() + field.size();
  auto [ptr, ec] = std::from_chars(field.data(), end, out);
  if (ec != std::errc() || ptr == field.data()) return false;
  auto unit = trim(std::string_view(ptr, static_cast<std::size_t>(end - ptr)));
  return unit.empty() || unit == "%" || unit == "MiB";
}

// Fills `out` unless the field is a placeholder (unknown: `out` keeps its -1); false if malformed.
template <class T>
bool read_metric(std::string_view field, T& out) {
  field = trim(field);
  if (is_placeholder(field)) return true;
  return parse_number(field, out);
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  for (;;) {
    auto at = s.find(sep);
    parts.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return parts;
    s.remove_prefix(at + 1);
  }
}

std::optional<GpuReading> parse_nvidia_line(std::string_view line) {
  auto fields = split(line, ',');
  if (fields.size() < 6) return std::nullopt;
  // The name is the only free-text field; should it hold commas, it spans the extra fields.
  const std::size_t name_end = fields.size() - 4;
  GpuReading gpu;
  auto index = trim(fields[0]);
  auto [ptr, ec] = std::from_chars(index.data(), index.data() + index.size(), gpu.index);
  if (ec != std::errc() || ptr != index.data() + index.size() || index.empty()) return std::nullopt;
  auto name_start = fields[1].data();
  auto name_stop = fields[name_end - 1].data() + fields[name_end - 1].size();
  auto name = trim(std::string_view(name_start, static_cast<std::size_t>(name_stop - name_start)));
  if (!is_placeholder(name)) gpu.name = std::string(name);
  if (!read_metric(fields[name_end], gpu.utilization_percent) ||
      !read_metric(fields[name_end + 1], gpu.memory_used_mib) ||
      !read_metric(fields[name_end + 2], gpu.memory_total_mib) ||
      !read_metric(fields[name_end + 3], gpu.temperature_c))
    return std::nullopt;
  return gpu;
}

// rocm-smi writes every value as a string ("12", "41.0", "N/A"); a number is taken too.
std::optional<double> json_number(const json& card, const char* key) {
  auto it = card.find(key);
  if (it == card.end()) return std::nullopt;
  if (it->is_number()) return it->get<double>();
  if (!it->is_string()) return std::nullopt;
  auto text = trim(it->get_ref<const std::string&>());
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::int64_t mib_of_bytes(const json& card, const char* key) {
  auto bytes = json_number(card, key);
  if (!bytes || *bytes < 0) return -1;
  return static_cast<std::int64_t>(*bytes) / kBytesPerMib;
}

std::string card_name(const json& card) {
  for (const char* key : {"Card Series", "Card series", "Device Name", "Card SKU"}) {
    auto it = card.find(key);
    if (it == card.end() || !it->is_string()) continue;
    auto name = trim(it->get_ref<const std::string&>());
    if (!name.empty() && name != "N/A" && name != "unknown") return std::string(name);
  }
  return "";
}

// "card3" -> 3; other keys ("system", which --showdriverversion adds) are not cards.
bool card_index(std::string_view key, unsigned& index) {
  if (key.substr(0, 4) != "card" || key.size() == 4) return false;
  auto digits = key.substr(4);
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
  return ec == std::errc() && ptr == digits.data() + digits.size();
}

json parse_json_object(std::string_view text) {
  json doc = json::parse(text.begin(), text.end(), nullptr, false);
  if (doc.is_discarded()) {
    // A warning line printed before the JSON (some ROCm builds do) must not hide it.
    auto first = text.find('{');
    auto last = text.rfind('}');
    if (first != std::string_view::npos && last != std::string_view::npos && last > first)
      doc = json::parse(text.begin() + first, text.begin() + last + 1, nullptr, false);
  }
  return doc;
}

void kill_and_reap(pid_t pid) {
  kill(-pid, SIGKILL);  // its process group: a wrapper script's children go too
  kill(pid, SIGKILL);
  // A tool stuck in the kernel (a wedged driver) dies only when the call returns: reap it later,
  // on a thread of its own, rather than wait for it here.
  const auto give_up = Clock::now() + std::chrono::milliseconds(200);
  while (Clock::now() < give_up) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::thread([pid] {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }).detach();
}

// Waits for the exit until the deadline; true when it exited with status 0. When SIGCHLD is
// ignored the kernel reaps the child itself and waitpid says ECHILD: the status is then unknown,
// and the output already read to EOF is trusted.
bool exited_cleanly(pid_t pid, Clock::time_point deadline) {
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (r < 0 && errno == ECHILD) return true;
    if (r < 0 && errno != EINTR) return false;
    if (Clock::now() >= deadline) {
      kill_and_reap(pid);
      return false;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
}

}  // namespace

std::vector<GpuReading> parse_nvidia_smi_csv(std::string_view text) {
  std::vector<GpuReading> gpus;
  for (auto line : split(text, '\n')) {
    line = trim(line);
    if (line.empty()) continue;
    if (auto gpu = parse_nvidia_line(line)) gpus.push_back(std::move(*gpu));
  }
  return gpus;
}

std::vector<GpuReading> parse_rocm_smi_json(std::string_view text) {
  std::vector<GpuReading> gpus;
  json doc = parse_json_object(text);
  if (!doc.is_object()) return gpus;
  for (const auto& [key, card] : doc.items()) {
    GpuReading gpu;
    if (!card_index(key, gpu.index) || !card.is_object()) continue;
    gpu.name = card_name(card);
    if (auto use = json_number(card, "GPU use (%)")) gpu.utilization_percent = *use;
    gpu.memory_total_mib = mib_of_bytes(card, "VRAM Total Memory (B)");
    gpu.memory_used_mib = mib_of_bytes(card, "VRAM Total Used Memory (B)");
    for (const char* sensor : {"Temperature (Sensor edge) (C)", "Temperature (Sensor junction) (C)",
                               "Temperature (Sensor memory) (C)"}) {
      if (auto t = json_number(card, sensor)) {
        gpu.temperature_c = *t;
        break;
      }
    }
    gpus.push_back(std::move(gpu));
  }
  std::sort(gpus.begin(), gpus.end(), [](const auto& a, const auto& b) { return a.index < b.index; });
  return gpus;
}

std::string find_on_path(std::string_view name) {
  const char* path = std::getenv("PATH");
  std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  for (auto dir : split(dirs, ':')) {
    if (dir.empty()) continue;  // "" means the working directory: never run a tool from there
    std::string candidate = std::string(dir) + "/" + std::string(name);
    struct stat st{};
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  return "";
}

std::optional<std::string> run_and_capture(const std::vector<std::string>& argv,
                                           std::chrono::milliseconds timeout, std::size_t max_bytes) {
  if (argv.empty()) return std::nullopt;
  const auto deadline = Clock::now() + timeout;
  int out[2];
  // O_CLOEXEC: a process another thread spawns meanwhile must not hold our pipe open.
  if (pipe2(out, O_CLOEXEC) != 0) return std::nullopt;

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The caller may block signals (a signalfd) or ignore SIGPIPE/SIGCHLD; the tool gets neither.
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGCHLD, SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGUSR1, SIGUSR2}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);  // its own group, so a timeout kills all it started
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int spawned = posix_spawn(&pid, argv[0].c_str(), &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(out[1]);
  if (spawned != 0) {
    close(out[0]);
    return std::nullopt;
  }

  std::string output;
  bool complete = false;  // read to EOF, within the deadline and the size cap
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    pollfd p{out[0], POLLIN, 0};
    int ready = poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    char buf[4096];
    ssize_t n = read(out[0], buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) break;
    if (n == 0) {
      complete = true;
      break;
    }
    if (output.size() + static_cast<std::size_t>(n) > max_bytes) break;
    output.append(buf, static_cast<std::size_t>(n));
  }
  close(out[0]);
  if (!complete) {
    kill_and_reap(pid);
    return std::nullopt;
  }
  if (!exited_cleanly(pid, deadline)) return std::nullopt;
  return output;
}

std::vector<GpuReading> read_gpus() {
  try {
    if (auto smi = find_on_path("nvidia-smi"); !smi.empty()) {
      auto out = run_and_capture({smi,
                                  "--query-gpu=index,name,utilization.gpu,memory.used,memory.total,"
                                  "temperature.gpu",
                                  "--format=csv,noheader,nounits"},
                                 kToolTimeout);
      if (out) {
        auto gpus = parse_nvidia_smi_csv(*out);
        if (!gpus.empty()) return gpus;
      }
    }
    // Also when nvidia-smi is installed but finds no NVIDIA GPU (a leftover driver package).
    if (auto smi = find_on_path("rocm-smi"); !smi.empty()) {
      auto out = run_and_capture(
          {smi, "--showuse", "--showmeminfo", "vram", "--showtemp", "--showproductname", "--json"},
          kToolTimeout);
      if (out) return parse_rocm_smi_json(*out);
    }
  } catch (...) {
    // Allocation failures and the like: the contract is "no GPUs known", never an exception.
  }
  return {};
}

}  // namespace plexus::node
