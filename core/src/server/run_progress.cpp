#include "src/server/run_progress.hpp"

#include "lorafed/error.hpp"
#include "src/statistics.hpp"

namespace lorafed {

void BestMetrics::add(int round, const nlohmann::json& evaluation) {
  for (const auto& [name, value] : evaluation.items()) {
    if (!value.is_number() || name.ends_with("_std") || name == "clients_evaluated") continue;
    const double number = value.get<double>();
    auto [entry, inserted] = best_.try_emplace(name, Entry{number, round});
    const bool better =
        lower_is_better(name) ? number < entry->second.value : number > entry->second.value;
    if (!inserted && better) entry->second = Entry{number, round};
  }
}

nlohmann::json BestMetrics::to_json() const {
  nlohmann::json saved = nlohmann::json::object();
  for (const auto& [name, entry] : best_) saved[name] = {entry.value, entry.round};
  return saved;
}

BestMetrics BestMetrics::from_json(const nlohmann::json& saved) {
  BestMetrics best;
  for (const auto& [name, entry] : saved.items()) {
    best.best_[name] = Entry{entry.at(0).get<double>(), entry.at(1).get<int>()};
  }
  return best;
}

nlohmann::json BestMetrics::summary() const {
  nlohmann::json result = nlohmann::json::object();
  for (const auto& [name, entry] : best_) {
    result["best_" + name] = entry.value;
    result["best_" + name + "_round"] = entry.round;
  }
  return result;
}

nlohmann::json RunProgress::to_json() const {
  return {{"base", base},
          {"last", last},
          {"last_federated", last_federated},
          {"best", best.to_json()},
          {"round_s", round_seconds},
          {"bytes_down", bytes_down},
          {"bytes_up", bytes_up},
          {"client_failures", client_failures},
          {"accounting", accounting},
          {"privacy", privacy},
          {"elapsed_s", elapsed_s}};
}

RunProgress RunProgress::from_json(const nlohmann::json& saved) {
  try {
    RunProgress progress;
    progress.base = saved.at("base");
    progress.last = saved.at("last");
    progress.last_federated = saved.at("last_federated");
    progress.best = BestMetrics::from_json(saved.at("best"));
    progress.round_seconds = saved.at("round_s").get<std::vector<double>>();
    progress.bytes_down = saved.at("bytes_down").get<std::uint64_t>();
    progress.bytes_up = saved.at("bytes_up").get<std::uint64_t>();
    progress.client_failures = saved.at("client_failures").get<std::int64_t>();
    progress.accounting = saved.at("accounting");
    // Absent from checkpoints of runs without [privacy] made before it existed.
    progress.privacy = saved.value("privacy", nlohmann::json::object());
    if (!progress.privacy.is_object())
      throw FormatError("the checkpoint's privacy record is damaged");
    progress.elapsed_s = saved.at("elapsed_s").get<double>();
    return progress;
  } catch (const nlohmann::json::exception& error) {
    throw FormatError("the checkpoint's progress record is damaged: " + std::string(error.what()));
  }
}

}  // namespace lorafed
