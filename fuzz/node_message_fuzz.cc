// Any bytes a node may send on its stream: whatever protobuf makes of them, the router's checks
// never crash, and what they accept is safe to use (bounded, finite, chat-shaped).
#include <cmath>
#include <cstdint>

#include "nodes/pull/node_messages.hpp"

namespace checks = plexus::node_messages;
namespace pb = plexus::node::v1;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  pb::NodeMessage message;
  if (!message.ParseFromArray(bytes, static_cast<int>(size))) return 0;
  switch (message.kind_case()) {
    case pb::NodeMessage::kRegister: {
      const auto& reg = message.register_();
      if (!checks::check_register(reg).empty()) return 0;
      auto models = checks::to_models(reg.models());
      if (models.empty() || models.size() > checks::kMaxModels) __builtin_trap();
      for (const auto& m : models)
        if (!std::isfinite(m.price.input_per_1k) || m.price.input_per_1k < 0 || m.id.empty()) __builtin_trap();
      if (checks::to_gpus(reg.gpus()).size() > checks::kMaxGpus) __builtin_trap();
      auto status = checks::to_backend_status(reg.models());
      if (status.loaded_models.size() > models.size()) __builtin_trap();
      break;
    }
    case pb::NodeMessage::kHeartbeat: {
      const auto& beat = message.heartbeat();
      if (checks::check_gpus(beat.gpus()).empty()) {
        for (const auto& g : checks::to_gpus(beat.gpus()))
          if (std::isnan(g.utilization_percent) || std::isnan(g.temperature_c)) __builtin_trap();
      }
      if (checks::check_models(beat.models()).empty()) (void)checks::to_models(beat.models());
      break;
    }
    case pb::NodeMessage::kChunk:
      (void)checks::is_chunk_json(message.chunk().data());
      break;
    case pb::NodeMessage::kComplete:
      (void)checks::is_completion_json(message.complete().body());
      break;
    default:
      break;
  }
  return 0;
}
