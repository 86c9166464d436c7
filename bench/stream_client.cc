// Opens N concurrent streamed chat completions (libcurl multi, one thread) and reports
// time-to-first-byte and total time percentiles, and how long after the first event each later
// event arrived (chunk_offset: its median and mean over every later event of every stream; a
// path that delays later chunks more than the first shows here). Every stream must end with
// "data: [DONE]".
//   stream_client --url URL --concurrency N [--rounds R] [--key KEY] [--model M]
#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {
using Clock = std::chrono::steady_clock;

struct Transfer {
  std::string body;
  curl_slist* headers = nullptr;
  std::vector<Clock::time_point> events;  // when each "data: " event arrived (per read, so
                                          // events read together share a time)
};

size_t collect(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  auto now = Clock::now();
  std::string_view bytes(data, size * n);
  for (std::size_t at = bytes.find("data: "); at != std::string_view::npos; at = bytes.find("data: ", at + 6))
    t->events.push_back(now);
  t->body.append(data, size * n);
  return size * n;
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}
}  // namespace

int main(int argc, char** argv) {
  std::string url, key, model = "mock";
  int concurrency = 1, rounds = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--url") url = argv[i + 1];
    if (a == "--concurrency") concurrency = std::atoi(argv[i + 1]);
    if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
    if (a == "--key") key = argv[i + 1];
    if (a == "--model") model = argv[i + 1];
  }
  const std::string request =
      R"({"model":")" + model + R"(","stream":true,"messages":[{"role":"user","content":"Benchmark me, please."}]})";
  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::vector<double> ttfb, total, offsets;
  int errors = 0;
  for (int round = 0; round < rounds; ++round) {
    CURLM* multi = curl_multi_init();
    std::vector<Transfer> transfers(concurrency);
    std::vector<CURL*> easies;
    for (auto& t : transfers) {
      CURL* e = curl_easy_init();
      t.headers = curl_slist_append(t.headers, "Content-Type: application/json");
      if (!key.empty()) t.headers = curl_slist_append(t.headers, ("Authorization: Bearer " + key).c_str());
      curl_easy_setopt(e, CURLOPT_URL, url.c_str());
      curl_easy_setopt(e, CURLOPT_HTTPHEADER, t.headers);
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, request.c_str());
      curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
      curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
      curl_easy_setopt(e, CURLOPT_PRIVATE, &t);
      curl_multi_add_handle(multi, e);
      easies.push_back(e);
    }
    int running = 1;
    while (running) {
      curl_multi_perform(multi, &running);
      if (running) curl_multi_poll(multi, nullptr, 0, 100, nullptr);
    }
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
      if (m->msg != CURLMSG_DONE) continue;
      Transfer* t = nullptr;
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
      long status = 0;
      curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
      if (m->data.result != CURLE_OK || status != 200 || t->body.find("data: [DONE]") == std::string::npos) {
        ++errors;
        continue;
      }
      curl_off_t first = 0, all = 0;
      curl_easy_getinfo(m->easy_handle, CURLINFO_STARTTRANSFER_TIME_T, &first);
      curl_easy_getinfo(m->easy_handle, CURLINFO_TOTAL_TIME_T, &all);
      ttfb.push_back(first / 1000.0);
      total.push_back(all / 1000.0);
      for (std::size_t k = 1; k < t->events.size(); ++k)
        offsets.push_back(std::chrono::duration<double, std::milli>(t->events[k] - t->events[0]).count());
    }
    for (size_t i = 0; i < easies.size(); ++i) {
      curl_multi_remove_handle(multi, easies[i]);
      curl_easy_cleanup(easies[i]);
      curl_slist_free_all(transfers[i].headers);
    }
    curl_multi_cleanup(multi);
  }
  double mean_offset = 0;
  for (double o : offsets) mean_offset += o / static_cast<double>(offsets.size());
  std::printf("ok=%zu errors=%d ttfb_p50_ms=%.3f ttfb_p99_ms=%.3f total_p50_ms=%.1f total_p99_ms=%.1f "
              "chunk_offset_p50_ms=%.3f chunk_offset_mean_ms=%.3f\n",
              ttfb.size(), errors, pct(ttfb, 0.5), pct(ttfb, 0.99), pct(total, 0.5), pct(total, 0.99),
              pct(offsets, 0.5), mean_offset);
  return errors ? 1 : 0;
}
