#include "deployer.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/line_splitter.hpp"

namespace plexus::node {

using nlohmann::json;

// One POST /api/pull with "stream": true: NDJSON lines {"status": ..., "total": N, "completed": M}
// ending with {"status": "success"}, or an {"error": ...} line (Ollama's API docs).
class Deployer::Pull final : public HttpResponseHandler {
 public:
  Pull(Deployer& owner, std::string model) : owner_(owner), model_(std::move(model)) {}

  void on_status(int status, const Headers&) override { status_ = status; }

  void on_data(std::string_view bytes) override {
    if (status_ != 200) {
      error_body_.append(bytes.substr(0, 4096 - std::min<std::size_t>(4096, error_body_.size())));
      return;
    }
    lines_.feed(bytes, [&](std::string_view line) {
      json doc = json::parse(line, nullptr, false);
      if (!doc.is_object()) return;
      if (doc.contains("error") && doc["error"].is_string()) error_ = doc["error"].get<std::string>();
      if (doc.value("status", "") == "success") success_ = true;
      if (doc.contains("total") && doc.contains("completed") && doc["total"].is_number() && doc["completed"].is_number()) {
        double total = doc["total"].get<double>();
        if (total > 0) progress(std::clamp(doc["completed"].get<double>() / total, 0.0, 1.0));
      }
    });
  }

  void on_end(TransferError error, std::string_view detail) override {
    std::string why;
    if (error != TransferError::kNone) why = "the backend did not answer the pull: " + std::string(detail);
    else if (status_ != 200) why = "the backend refused the pull (HTTP " + std::to_string(status_) + "): " + error_body_;
    else if (!error_.empty()) why = error_;
    else if (!success_) why = "the pull ended without success";
    owner_.transfer_ = 0;
    for (auto& e : owner_.entries_)
      if (e.model == model_) owner_.finished(e, why.empty(), why);
  }

 private:
  void progress(double p) {
    for (auto& e : owner_.entries_)
      if (e.model == model_) e.progress = p;
  }
  Deployer& owner_;
  std::string model_;
  int status_ = 0;
  LineSplitter lines_{1 << 20};
  bool success_ = false;
  std::string error_;
  std::string error_body_;
};

Deployer::Deployer(HttpClient& http, Timers& timers, std::string ollama_url, std::string backend_kind,
                   std::function<void(const std::string&)> on_loaded)
    : http_(http), timers_(timers), ollama_url_(std::move(ollama_url)), backend_kind_(std::move(backend_kind)), on_loaded_(std::move(on_loaded)) {}

Deployer::~Deployer() {
  if (transfer_) http_.abort(transfer_);
}

void Deployer::apply(const pb::Deployments& deployments, const std::vector<std::string>& served) {
  for (const auto& item : deployments.items()) {
    if (std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.model == item.model(); })) continue;
    Entry entry;
    entry.model = item.model();
    if (std::find(served.begin(), served.end(), item.model()) != served.end()) {
      entry.state = pb::DeploymentState::LOADED;
    } else if (ollama_url_.empty()) {
      entry.state = pb::DeploymentState::UNSUPPORTED;
      entry.detail = "this node's backend (" + backend_kind_ + ") cannot fetch models; load " + item.model() + " there by hand";
      spdlog::warn("deployment {}: {}", item.model(), entry.detail);
    }
    entries_.push_back(std::move(entry));
  }
  pull_next();
}

void Deployer::pull_next() {
  if (transfer_) return;
  auto it = std::find_if(entries_.begin(), entries_.end(), [](const Entry& e) { return e.state == pb::DeploymentState::MISSING; });
  if (it == entries_.end()) return;
  it->state = pb::DeploymentState::PULLING;
  spdlog::info("deployment {}: pulling it into the backend", it->model);
  HttpRequest request;
  request.url = ollama_url_ + "/api/pull";
  request.headers = {{"content-type", "application/json"}};
  request.body = json{{"model", it->model}, {"stream", true}}.dump();
  request.first_byte_timeout = std::chrono::minutes(5);
  request.idle_timeout = std::chrono::minutes(10);  // a large layer may stall a while
  transfer_ = http_.start(std::move(request), std::make_shared<Pull>(*this, it->model));
}

void Deployer::finished(Entry& entry, bool ok, const std::string& detail) {
  entry.state = ok ? pb::DeploymentState::LOADED : pb::DeploymentState::FAILED;
  entry.progress = ok ? 1 : entry.progress;
  entry.detail = detail;
  if (ok) {
    spdlog::info("deployment {}: pulled; serving it", entry.model);
    on_loaded_(entry.model);
  } else {
    spdlog::error("deployment {}: {}", entry.model, detail);
  }
  // The next pull starts on a later turn, outside the finished transfer's callbacks.
  timers_.after(std::chrono::milliseconds(0), [this] { pull_next(); });
}

void Deployer::report(google::protobuf::RepeatedPtrField<pb::DeploymentState>* out) const {
  for (const auto& e : entries_) {
    auto* s = out->Add();
    s->set_model(e.model);
    s->set_state(e.state);
    s->set_progress(e.progress);
    s->set_detail(e.detail);
  }
}

}  // namespace plexus::node
