#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>

#include "lorafed/named_tensors.hpp"

namespace lorafed {

// What the server needs to continue a federation after the last complete
// round (docs/deployment.md, "Checkpoint and resume"). On disk, in
// <out>/checkpoint/:
//   state-<round>.safetensors  the strategy's state() after that round
//   checkpoint.json            {"round", "state", "identity", "progress"}
// Each file is written to a temporary name and renamed; checkpoint.json is
// renamed last and names its state file, so a crash at any point leaves the
// previous complete checkpoint readable. Older state files are removed after.
struct Checkpoint {
  int round = 0;
  NamedTensors state;
  // What must not change between the run and its resumption (strategy,
  // model, seed, ...); read() refuses a checkpoint whose identity differs.
  nlohmann::json identity;
  // The orchestrator's running figures (bytes, failures, best metrics, ...).
  nlohmann::json progress;

  void write(const std::filesystem::path& directory) const;
  // Throws ConfigError when `directory` holds no checkpoint or one made with
  // a different identity, FormatError when its files are damaged.
  static Checkpoint read(const std::filesystem::path& directory,
                         const nlohmann::json& expected_identity);
};

}  // namespace lorafed
