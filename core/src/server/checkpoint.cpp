#include "src/server/checkpoint.hpp"

#include <fstream>

#include "lorafed/error.hpp"
#include "lorafed/safetensors.hpp"
#include "src/sdk/atomic_file.hpp"

namespace lorafed {
namespace {

constexpr const char* kIndex = "checkpoint.json";

std::string state_file(int round) {
  return "state-" + std::to_string(round) + ".safetensors";
}

}  // namespace

void Checkpoint::write(const std::filesystem::path& directory) const {
  std::filesystem::create_directories(directory);
  save_safetensors(directory / state_file(round), state);
  const nlohmann::json index = {{"round", round},
                                {"state", state_file(round)},
                                {"identity", identity},
                                {"progress", progress}};
  write_file_atomically(directory / kIndex,
                        [&](std::ostream& out) { out << index.dump(1) << '\n'; });
  // The new checkpoint is complete: older state files are no longer named.
  for (const auto& entry : std::filesystem::directory_iterator(directory)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("state-") && name != state_file(round)) {
      std::error_code ignored;
      std::filesystem::remove(entry.path(), ignored);
    }
  }
}

Checkpoint Checkpoint::read(const std::filesystem::path& directory,
                            const nlohmann::json& expected_identity) {
  const std::filesystem::path index_path = directory / kIndex;
  std::ifstream in(index_path);
  if (!in) {
    throw ConfigError("no checkpoint to resume from: '" + index_path.string() +
                      "' does not exist (is it the output folder of a run with "
                      "[checkpoint] enabled = true that finished at least one round?)");
  }
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& error) {
    throw FormatError("'" + index_path.string() + "' is not valid JSON: " + error.what());
  }
  Checkpoint checkpoint;
  try {
    checkpoint.round = index.at("round").get<int>();
    checkpoint.identity = index.at("identity");
    checkpoint.progress = index.at("progress");
    const std::string state = index.at("state").get<std::string>();
    if (state.find('/') != std::string::npos) throw FormatError("state file name has a '/'");
    checkpoint.state = load_safetensors(directory / state).tensors;
  } catch (const nlohmann::json::exception& error) {
    throw FormatError("'" + index_path.string() + "' lacks a field: " + error.what());
  }
  if (checkpoint.round < 1) throw FormatError("'" + index_path.string() + "': round < 1");
  for (const auto& [key, value] : expected_identity.items()) {
    const nlohmann::json found = checkpoint.identity.value(key, nlohmann::json());
    if (found != value) {
      throw ConfigError("cannot resume from '" + directory.string() + "': it was made with " + key +
                        " = " + found.dump() + ", this configuration has " + value.dump());
    }
  }
  return checkpoint;
}

}  // namespace lorafed
