#pragma once
// What the node reports about its GPUs: each card's name, load, memory and temperature, read from
// the vendor's own command-line tool (nvidia-smi, else rocm-smi), so the node links no GPU library.
// A field the tool cannot tell ("[N/A]", a missing key) stays at -1; it is never an error.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace plexus::node {

struct GpuReading {
  unsigned index = 0;
  std::string name;                  // "" when the tool does not say
  double utilization_percent = -1;   // -1 = unknown
  std::int64_t memory_used_mib = -1;
  std::int64_t memory_total_mib = -1;
  double temperature_c = -1;
};

// Parses the output of
//   nvidia-smi --query-gpu=index,name,utilization.gpu,memory.used,memory.total,temperature.gpu
//              --format=csv,noheader,nounits
// one line per GPU ("0, NVIDIA H100 80GB HBM3, 37, 1234, 81559, 41"). "[N/A]", "[Not Supported]"
// and any other bracketed placeholder mean unknown; CRLF and blank lines are fine; a line that is
// not a GPU (a header, "No devices were found", a driver error) is skipped.
std::vector<GpuReading> parse_nvidia_smi_csv(std::string_view text);

// Parses `rocm-smi --showuse --showmeminfo vram --showtemp --showproductname --json`: an object
// keyed "card0", "card1"... whose values are strings ("GPU use (%)": "12", "VRAM Total Memory (B)":
// "68702699520"). Bytes become MiB; the edge temperature is preferred, then junction, then memory
// (MI300 has no edge sensor); the name is "Card Series" (rocm-smi >= 6.1) or "Card series" (older),
// else "Device Name", else "Card SKU". Sorted by card number; anything that is not such an object
// gives an empty vector.
std::vector<GpuReading> parse_rocm_smi_json(std::string_view text);

// Runs nvidia-smi if it is on PATH and, when that gives no GPU, rocm-smi if it is on PATH; each run
// is killed (with its process group) after about 3 s. No tool, a failing or hanging tool: an empty
// vector, never an exception. Blocking for up to ~3 s per tool: call off the event loop.
std::vector<GpuReading> read_gpus();

// The runner under read_gpus(), public so its timeout can be tested: runs argv[0] (a path; PATH is
// not searched) with argv, stdin and stderr on /dev/null, and returns its stdout if it exits 0
// within `timeout` having written at most `max_bytes`; else kills its process group and returns
// std::nullopt.
std::optional<std::string> run_and_capture(const std::vector<std::string>& argv,
                                           std::chrono::milliseconds timeout,
                                           std::size_t max_bytes = 1u << 20);

// The full path of an executable named `name` in $PATH, or "" when there is none.
std::string find_on_path(std::string_view name);

}  // namespace plexus::node
