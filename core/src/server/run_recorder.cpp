#include "src/server/run_recorder.hpp"

#include <spdlog/spdlog.h>

#include <set>

#include "src/peft_adapter.hpp"
#include "src/server/checkpoint.hpp"

namespace lorafed {

RunRecorder::RunRecorder(const FederationConfig& config, const ModelSpec& spec,
                         MetricsWriter& metrics)
    : config_(config), spec_(spec), metrics_(metrics) {}

nlohmann::json RunRecorder::identity(const FederationConfig& config, const ModelSpec& spec) {
  return {{"strategy", config.strategy_name},  {"model", config.model_name},
          {"model_id", spec.model_id},         {"seed", config.seed},
          {"num_clients", config.num_clients}, {"alpha", config.alpha}};
}

void RunRecorder::client_results(const char* phase, int round, const ClientFields& results,
                                 const std::vector<Failure>& failures) {
  std::vector<nlohmann::json> lines;
  lines.reserve(results.size() + failures.size());
  for (const auto& [client_id, fields] : results) {
    // The record's own keys win over a field of the same name.
    nlohmann::json& line = lines.emplace_back(fields);
    line.update({{"type", "client"},
                 {"phase", phase},
                 {"round", round},
                 {"client", client_id},
                 {"status", "ok"}});
  }
  for (const Failure& failure : failures) {
    lines.push_back({{"type", "client"},
                     {"phase", phase},
                     {"round", round},
                     {"client", failure.client_id},
                     {"status", "failed"},
                     {"reason", failure.reason}});
  }
  metrics_.record_all(lines);
}

void RunRecorder::checkpoint(int round, const NamedTensors& state, const RunProgress& progress) {
  if (!config_.checkpoint) return;
  Checkpoint{round, state, identity(config_, spec_), progress.to_json()}.write(
      metrics_.output_dir() / "checkpoint");
}

nlohmann::json RunRecorder::export_adapters(const NamedTensors& global_delta,
                                            const ModelBackend& model) {
  nlohmann::json written = nlohmann::json::array();
  nlohmann::json result = {{"peft", written}};
  if (global_delta.empty()) return result;
  const PeftExporter exporter(global_delta);  // one SVD per layer for all the exports
  // The base first, so the adapters can name it: by its absolute path, which
  // loads from any working directory (AutoPeftModelForCausalLM resolves a
  // relative one against the current directory). A model without a Hugging
  // Face architecture is named by its id, as clients registered with it.
  PeftBase base{spec_.model_id, {}, false};
  const std::filesystem::path base_folder = std::filesystem::path("peft") / "base";
  const std::filesystem::path base_directory = metrics_.output_dir() / base_folder;
  try {
    if (const auto hf_base = model.write_hf_base(base_directory)) {
      base.name_or_path = std::filesystem::absolute(base_directory).lexically_normal().string();
      base.task_type = hf_base->task_type;
      base.fan_in_fan_out = hf_base->fan_in_fan_out;
      result["peft_base"] = base_folder.string();
      spdlog::info("base model for the PEFT adapters: {}", base.name_or_path);
    }
  } catch (const std::exception& error) {
    // The adapters stand without it, naming the model by its id.
    spdlog::warn("could not write the base model {}: {}", base_directory.string(), error.what());
    std::error_code ignored;
    std::filesystem::remove_all(base_directory, ignored);
  }
  // The global model at [export] rank (default: the largest client rank),
  // then, when ranks differ, each client rank's truncation.
  const std::set<std::int64_t> ranks(config_.ranks.begin(), config_.ranks.end());
  const std::int64_t global_rank = config_.export_rank > 0 ? config_.export_rank : *ranks.rbegin();
  std::vector<std::pair<std::string, std::int64_t>> exports = {{"global", global_rank}};
  if (ranks.size() > 1) {
    for (const std::int64_t rank : ranks)
      exports.emplace_back("rank-" + std::to_string(rank), rank);
  }
  for (const auto& [name, rank] : exports) {
    const std::filesystem::path folder = std::filesystem::path("peft") / name;
    try {
      exporter.write(metrics_.output_dir() / folder, rank, config_.alpha, base);
      const double error = exporter.relative_truncation_error(rank);
      written.push_back(nlohmann::json{
          {"folder", folder.string()}, {"rank", rank}, {"relative_truncation_error", error}});
      spdlog::info("PEFT adapter {} at rank {}: it leaves out {:.3g} of the change's squared norm",
                   (metrics_.output_dir() / folder).string(), rank, error);
    } catch (const std::exception& error) {
      // The run's results stand without it.
      spdlog::warn("could not export the PEFT adapter {}: {}",
                   (metrics_.output_dir() / folder).string(), error.what());
    }
  }
  result["peft"] = written;
  return result;
}

}  // namespace lorafed
