#pragma once
// What a pull node sends is untrusted input: every message is checked here before the router
// acts on it. Pure functions (the fuzzer calls them too).
#include <string>
#include <string_view>
#include <vector>

#include "nodes/node.hpp"
#include "plexus/node/v1/node.pb.h"

namespace plexus::node_messages {

namespace pb = ::plexus::node::v1;

// Bounds on what a node may declare.
constexpr std::size_t kMaxName = 64;
constexpr std::size_t kMaxModels = 1024;
constexpr std::size_t kMaxModelId = 256;
constexpr std::size_t kMaxGpus = 64;
constexpr std::size_t kMaxText = 256;  // region, agent, backend, GPU names
constexpr std::uint32_t kMaxCredit = 100000;  // slots a node may hold at once

// Empty when acceptable, else why not (sent back to the node).
std::string check_register(const pb::Register& reg);
std::string check_models(const google::protobuf::RepeatedPtrField<pb::Model>& models);
std::string check_gpus(const google::protobuf::RepeatedPtrField<pb::Gpu>& gpus);

std::string check_deployments(const google::protobuf::RepeatedPtrField<pb::DeploymentState>& states);
std::vector<DeploymentStatus> to_deployments(const google::protobuf::RepeatedPtrField<pb::DeploymentState>& states);

bool same_models(const std::vector<NodeModel>& a, const std::vector<NodeModel>& b);

std::vector<NodeModel> to_models(const google::protobuf::RepeatedPtrField<pb::Model>& models,
                                 const BreakerSettings& breaker = {});
std::vector<GpuMetrics> to_gpus(const google::protobuf::RepeatedPtrField<pb::Gpu>& gpus);
// The models a node reports as loaded, as the routing filter reads them.
BackendStatus to_backend_status(const google::protobuf::RepeatedPtrField<pb::Model>& models);

// A chat.completion.chunk (stream) or chat.completion (whole) object: a JSON object with a
// "choices" array. Anything else from a node cuts it off.
bool is_chunk_json(std::string_view text);
bool is_completion_json(std::string_view text);
// An embeddings order's answer: a JSON object with a "data" array.
bool is_embeddings_json(std::string_view text);

}  // namespace plexus::node_messages
