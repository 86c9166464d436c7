#include "gpu_metrics.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace plexus::node {
namespace {

namespace fs = std::filesystem;

// Fixtures live in tests/unit/data; the build may say where (it runs tests from elsewhere).
fs::path data_dir() {
#ifdef PLEXUS_TEST_DATA_DIR
  return PLEXUS_TEST_DATA_DIR;
#else
  return fs::path(__FILE__).parent_path() / "data";
#endif
}

std::string fixture(const std::string& name) {
  std::ifstream in(data_dir() / name, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_FALSE(text.str().empty()) << "missing fixture " << (data_dir() / name);
  return text.str();
}

// --- nvidia-smi --------------------------------------------------------------------------------

TEST(NvidiaSmiCsv, ReadsEveryGpuOfATwoH100Box) {
  auto gpus = parse_nvidia_smi_csv(fixture("nvidia_smi_h100x2.csv"));
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(gpus[0].index, 0u);
  EXPECT_EQ(gpus[0].name, "NVIDIA H100 80GB HBM3");
  EXPECT_DOUBLE_EQ(gpus[0].utilization_percent, 37);
  EXPECT_EQ(gpus[0].memory_used_mib, 1234);
  EXPECT_EQ(gpus[0].memory_total_mib, 81559);
  EXPECT_DOUBLE_EQ(gpus[0].temperature_c, 41);
  EXPECT_EQ(gpus[1].index, 1u);
  EXPECT_DOUBLE_EQ(gpus[1].utilization_percent, 0);  // idle is 0, not unknown
  EXPECT_DOUBLE_EQ(gpus[1].temperature_c, 33);
}

// A laptop GPU as Windows' nvidia-smi writes it: CRLF, a blank last line, sensors it cannot read.
TEST(NvidiaSmiCsv, LaptopPlaceholdersAreUnknownNotErrors) {
  auto gpus = parse_nvidia_smi_csv(fixture("nvidia_smi_laptop_na.csv"));
  ASSERT_EQ(gpus.size(), 1u);
  EXPECT_EQ(gpus[0].name, "NVIDIA GeForce RTX 3050 Ti Laptop GPU");
  EXPECT_DOUBLE_EQ(gpus[0].utilization_percent, -1);
  EXPECT_EQ(gpus[0].memory_used_mib, 6);
  EXPECT_EQ(gpus[0].memory_total_mib, 4096);
  EXPECT_DOUBLE_EQ(gpus[0].temperature_c, -1);
}

TEST(NvidiaSmiCsv, EveryBracketedPlaceholderMeansUnknown) {
  auto gpus = parse_nvidia_smi_csv(
      "0, NVIDIA GB10, 3, [N/A], [N/A], 45\n"                              // unified memory
      "1, GeForce GTX 1050, [Not Supported], 305, 4042, [Unknown Error]\n"  // old GeForce driver
      "2, [N/A], 1, [Insufficient Permissions], 24564, 30\n");
  ASSERT_EQ(gpus.size(), 3u);
  EXPECT_EQ(gpus[0].memory_used_mib, -1);
  EXPECT_EQ(gpus[0].memory_total_mib, -1);
  EXPECT_DOUBLE_EQ(gpus[0].utilization_percent, 3);
  EXPECT_DOUBLE_EQ(gpus[1].utilization_percent, -1);
  EXPECT_DOUBLE_EQ(gpus[1].temperature_c, -1);
  EXPECT_EQ(gpus[1].memory_used_mib, 305);
  EXPECT_EQ(gpus[2].name, "");
  EXPECT_EQ(gpus[2].memory_used_mib, -1);
  EXPECT_EQ(gpus[2].memory_total_mib, 24564);
}

TEST(NvidiaSmiCsv, ANameWithACommaKeepsItsCommaAndTheOtherFields) {
  auto gpus = parse_nvidia_smi_csv("3, NVIDIA A100-SXM4-40GB, MIG 1g.5gb, [N/A], 12, 4864, 31\n");
  ASSERT_EQ(gpus.size(), 1u);
  EXPECT_EQ(gpus[0].index, 3u);
  EXPECT_EQ(gpus[0].name, "NVIDIA A100-SXM4-40GB, MIG 1g.5gb");
  EXPECT_DOUBLE_EQ(gpus[0].utilization_percent, -1);
  EXPECT_EQ(gpus[0].memory_used_mib, 12);
  EXPECT_EQ(gpus[0].memory_total_mib, 4864);
}

TEST(NvidiaSmiCsv, SkipsLinesThatAreNotGpus) {
  auto gpus = parse_nvidia_smi_csv(
      "index, name, utilization.gpu [%], memory.used [MiB], memory.total [MiB], temperature.gpu\n"
      "No devices were found\n"
      "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n"
      "0, Broken, abc, 1, 2, 3\n"
      "1, Too, few\n"
      "   \t\n"
      "x, NVIDIA L4, 1, 2, 3, 4\n"
      "2, NVIDIA L4, 5, 200, 23034, 38\n");
  ASSERT_EQ(gpus.size(), 1u);
  EXPECT_EQ(gpus[0].index, 2u);
  EXPECT_EQ(gpus[0].name, "NVIDIA L4");
}

// Someone dropping "nounits" from the query should not lose the readings.
TEST(NvidiaSmiCsv, ToleratesUnitsAndFractions) {
  auto gpus = parse_nvidia_smi_csv("0, NVIDIA L40S, 37 %, 1234 MiB, 46068 MiB, 40.5");
  ASSERT_EQ(gpus.size(), 1u);
  EXPECT_DOUBLE_EQ(gpus[0].utilization_percent, 37);
  EXPECT_EQ(gpus[0].memory_used_mib, 1234);
  EXPECT_EQ(gpus[0].memory_total_mib, 46068);
  EXPECT_DOUBLE_EQ(gpus[0].temperature_c, 40.5);
}

TEST(NvidiaSmiCsv, EmptyOutputGivesNoGpu) {
  EXPECT_TRUE(parse_nvidia_smi_csv("").empty());
  EXPECT_TRUE(parse_nvidia_smi_csv("\r\n\n").empty());
}

// --- rocm-smi ----------------------------------------------------------------------------------

// rocm-smi 6.x (json.dumps of its table: every value a string) on a two-MI210 box.
TEST(RocmSmiJson, ReadsEveryCardInBytesAsMib) {
  auto gpus = parse_rocm_smi_json(fixture("rocm_smi.json"));
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(gpus[0].index, 0u);
  EXPECT_EQ(gpus[0].name, "AMD Instinct MI210");
  EXPECT_DOUBLE_EQ(gpus[0].utilization_percent, 12);
  EXPECT_EQ(gpus[0].memory_total_mib, 65520);  // 68702699520 B
  EXPECT_EQ(gpus[0].memory_used_mib, 10);       // 11173888 B, rounded down
  EXPECT_DOUBLE_EQ(gpus[0].temperature_c, 41);  // the edge sensor
  EXPECT_EQ(gpus[1].index, 1u);
  EXPECT_DOUBLE_EQ(gpus[1].utilization_percent, 97);
  EXPECT_EQ(gpus[1].memory_used_mib, 24576);
  EXPECT_DOUBLE_EQ(gpus[1].temperature_c, 38);
}

// rocm-smi before 6.1 spelled "Card series"; MI300X has no edge sensor (the key is then absent);
// what the tool could not read is missing or "N/A".
TEST(RocmSmiJson, OlderSpellingsAndMissingSensorsAreHandled) {
  auto gpus = parse_rocm_smi_json(R"json({
    "card0": {"Temperature (Sensor junction) (C)": "51.0", "Temperature (Sensor memory) (C)": "40.0",
              "GPU use (%)": "N/A", "Card series": "Navi 21 [Radeon RX 6800/6800 XT / 6900 XT]",
              "Card SKU": "D4120100"},
    "card1": {"Card SKU": "D70401XT", "VRAM Total Memory (B)": "N/A"}})json");
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(gpus[0].name, "Navi 21 [Radeon RX 6800/6800 XT / 6900 XT]");
  EXPECT_DOUBLE_EQ(gpus[0].temperature_c, 51);  // junction, as edge is missing
  EXPECT_DOUBLE_EQ(gpus[0].utilization_percent, -1);
  EXPECT_EQ(gpus[0].memory_total_mib, -1);
  EXPECT_EQ(gpus[1].name, "D70401XT");  // no series: the SKU
  EXPECT_EQ(gpus[1].memory_total_mib, -1);
  EXPECT_DOUBLE_EQ(gpus[1].temperature_c, -1);
}

TEST(RocmSmiJson, OnlyCardKeysCountAndCardsSortByNumber) {
  auto gpus = parse_rocm_smi_json(R"json({"system": {"Driver version": "6.8.5"},
    "card10": {"GPU use (%)": "1"}, "card2": {"GPU use (%)": 2}, "cardX": {}, "card3": "oops"})json");
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(gpus[0].index, 2u);
  EXPECT_DOUBLE_EQ(gpus[0].utilization_percent, 2);  // a number instead of a string is fine
  EXPECT_EQ(gpus[1].index, 10u);
}

TEST(RocmSmiJson, AWarningBeforeTheJsonDoesNotHideIt) {
  auto gpus = parse_rocm_smi_json(
      "WARNING: AMD GPU device(s) is/are in a low-power state. Check power control/runtime_status\n"
      "{\"card0\": {\"GPU use (%)\": \"4\"}}\n");
  ASSERT_EQ(gpus.size(), 1u);
  EXPECT_DOUBLE_EQ(gpus[0].utilization_percent, 4);
}

TEST(RocmSmiJson, GarbageGivesNoGpu) {
  for (const char* text : {"", "garbage", "[]", "null", "{\"card0\": 5}", "{\"card0\": {", "<html></html>"})
    EXPECT_TRUE(parse_rocm_smi_json(text).empty()) << text;
}

// --- running the tools -------------------------------------------------------------------------

// A temporary directory of fake tools that becomes the whole PATH while the test runs.
class FakeToolDir {
 public:
  FakeToolDir() {
    char name[] = "/tmp/plexus-gpu-test-XXXXXX";
    dir_ = mkdtemp(name);
    if (const char* path = getenv("PATH")) saved_path_ = path;
    setenv("PATH", dir_.c_str(), 1);
  }
  ~FakeToolDir() {
    setenv("PATH", saved_path_.c_str(), 1);
    fs::remove_all(dir_);
  }
  void add(const std::string& tool, const std::string& script) {
    auto path = dir_ / tool;
    std::ofstream(path) << "#!/bin/sh\nPATH=/usr/bin:/bin\n" << script << "\n";  // for cat, sleep
    chmod(path.c_str(), 0755);
  }
  fs::path dir() const { return dir_; }

 private:
  fs::path dir_;
  std::string saved_path_;
};

TEST(RunAndCapture, ReturnsTheOutputOfACleanExit) {
  auto out = run_and_capture({"/bin/sh", "-c", "echo one; echo two"}, std::chrono::seconds(5));
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(*out, "one\ntwo\n");
}

TEST(RunAndCapture, AFailingOrMissingToolGivesNothing) {
  EXPECT_FALSE(run_and_capture({"/bin/sh", "-c", "echo partial; exit 9"}, std::chrono::seconds(5)));
  EXPECT_FALSE(run_and_capture({"/nonexistent/nvidia-smi"}, std::chrono::seconds(5)));
  EXPECT_FALSE(run_and_capture({}, std::chrono::seconds(5)));
}

// A wedged driver makes nvidia-smi hang, with or without having written something, or after
// closing its stdout: each time the caller gets control back at the deadline.
TEST(RunAndCapture, AHangingToolIsKilledAtTheDeadline) {
  for (const char* script : {"sleep 30", "echo started; sleep 30", "exec >/dev/null; sleep 30"}) {
    auto start = std::chrono::steady_clock::now();
    auto out = run_and_capture({"/bin/sh", "-c", script}, std::chrono::milliseconds(200));
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_FALSE(out.has_value()) << script;
    EXPECT_LT(took, std::chrono::seconds(2)) << script;
  }
}

TEST(RunAndCapture, OutputOverTheCapGivesNothing) {
  EXPECT_FALSE(run_and_capture({"/bin/sh", "-c", "yes"}, std::chrono::seconds(5), 64 * 1024));
}

TEST(FindOnPath, FindsOnlyExecutablesInPath) {
  FakeToolDir tools;
  tools.add("nvidia-smi", "exit 0");
  std::ofstream(tools.dir() / "rocm-smi") << "not executable";
  EXPECT_EQ(find_on_path("nvidia-smi"), (tools.dir() / "nvidia-smi").string());
  EXPECT_EQ(find_on_path("rocm-smi"), "");
  EXPECT_EQ(find_on_path("no-such-tool"), "");
}

TEST(ReadGpus, RunsNvidiaSmiWithTheQueryAndParsesIt) {
  FakeToolDir tools;
  // The fake answers only the exact command line read_gpus() promises to run.
  tools.add("nvidia-smi",
            "[ \"$1\" = --query-gpu=index,name,utilization.gpu,memory.used,memory.total,temperature.gpu ] &&"
            " [ \"$2\" = --format=csv,noheader,nounits ] || exit 2\n"
            "cat '" + (data_dir() / "nvidia_smi_h100x2.csv").string() + "'");
  auto gpus = read_gpus();
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(gpus[1].memory_total_mib, 81559);
}

TEST(ReadGpus, FallsBackToRocmSmiWhenNvidiaSmiFindsNothing) {
  FakeToolDir tools;
  tools.add("nvidia-smi", "echo 'No devices were found'; exit 6");
  tools.add("rocm-smi",
            "[ \"$*\" = '--showuse --showmeminfo vram --showtemp --showproductname --json' ] || exit 2\n"
            "cat '" + (data_dir() / "rocm_smi.json").string() + "'");
  auto gpus = read_gpus();
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(gpus[0].name, "AMD Instinct MI210");
}

TEST(ReadGpus, NoToolGivesNoGpu) {
  FakeToolDir tools;
  EXPECT_TRUE(read_gpus().empty());
}

}  // namespace
}  // namespace plexus::node
