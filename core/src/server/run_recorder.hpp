#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "lorafed/model_backend.hpp"
#include "lorafed/model_spec.hpp"
#include "lorafed/strategy.hpp"
#include "src/federation_config.hpp"
#include "src/metrics_writer.hpp"
#include "src/server/run_progress.hpp"

namespace lorafed {

// What a run leaves in its output folder (docs/outputs.md): a metrics.jsonl
// line per round and per client result, a checkpoint after every round, and
// at the end the PEFT export and summary.json. A record that cannot be
// written stops the run at once (MetricsWriter).
class RunRecorder {
 public:
  RunRecorder(const FederationConfig& config, const ModelSpec& spec, MetricsWriter& metrics);

  // What a checkpoint must match to be resumed with this configuration.
  static nlohmann::json identity(const FederationConfig& config, const ModelSpec& spec);

  void round(const nlohmann::json& record) { metrics_.record(record); }
  // One phase's client lines of a round, written together: for each result
  // {"type": "client", "phase", "round", "client", "status": "ok", ...fields},
  // then for each failure the same with "status": "failed" and its "reason".
  using ClientFields = std::vector<std::pair<std::string, nlohmann::json>>;  // by client id
  void client_results(const char* phase, int round, const ClientFields& results,
                      const std::vector<Failure>& failures);
  // <out>/checkpoint after `round`, when checkpoints are on.
  void checkpoint(int round, const NamedTensors& state, const RunProgress& progress);
  // Writes <out>/peft/global (and peft/rank-<r> for each client rank when
  // ranks differ) as PEFT adapters of `global_delta`, and <out>/peft/base,
  // `model`'s frozen base as a Hugging Face model folder, when the model has
  // one (ModelBackend::write_hf_base); the adapters point at it. Returns
  // summary.json's "peft" (the adapter folders) and, when written,
  // "peft_base".
  nlohmann::json export_adapters(const NamedTensors& global_delta, const ModelBackend& model);
  void summary(const nlohmann::json& summary) { metrics_.write_summary(summary); }

 private:
  const FederationConfig& config_;
  const ModelSpec& spec_;
  MetricsWriter& metrics_;
};

}  // namespace lorafed
