#include "src/server/accounting.hpp"

namespace lorafed {

nlohmann::json Accounting::add_round(std::span<const FitResult> results,
                                     const BytesByClient& bytes_down,
                                     const BytesByClient& bytes_up) {
  Mean bytes, flops, full_model_bytes;
  for (const FitResult& result : results) {
    const auto down = bytes_down.find(result.client_id);
    const auto up = bytes_up.find(result.client_id);
    bytes.add(static_cast<double>((down == bytes_down.end() ? 0 : down->second) +
                                  (up == bytes_up.end() ? 0 : up->second)));
    if (const auto reported = result.metrics.find("train_flops");
        reported != result.metrics.end()) {
      flops.add(reported->second);
    }
    if (const auto reported = result.metrics.find("local_parameters");
        reported != result.metrics.end()) {
      full_model_bytes.add(2 * 4 * reported->second);  // float32, down and up
    }
  }
  nlohmann::json figures = nlohmann::json::object();  // empty for a round without results
  if (bytes.count > 0) {
    bytes_per_client_.add(bytes.value());
    figures["bytes_per_client"] = bytes.value();
  }
  if (flops.count > 0) {
    flops_per_client_.add(flops.value());
    figures["train_flops_per_client"] = flops.value();
  }
  if (full_model_bytes.count > 0) {
    full_model_bytes_per_client_.add(full_model_bytes.value());
    figures["full_model_bytes_per_client"] = full_model_bytes.value();
  }
  return figures;
}

nlohmann::json Accounting::summary() const {
  nlohmann::json summary = nlohmann::json::object();
  if (bytes_per_client_.count > 0) summary["bytes_per_client_round"] = bytes_per_client_.value();
  if (flops_per_client_.count > 0)
    summary["train_flops_per_client_round"] = flops_per_client_.value();
  if (full_model_bytes_per_client_.count > 0) {
    summary["full_model_bytes_per_client_round"] = full_model_bytes_per_client_.value();
    if (bytes_per_client_.value() > 0) {
      summary["communication_saving"] =
          full_model_bytes_per_client_.value() / bytes_per_client_.value();
    }
  }
  return summary;
}

nlohmann::json Accounting::save() const {
  nlohmann::json saved;
  for (const auto& [name, mean] :
       {std::pair{"bytes", &bytes_per_client_}, std::pair{"flops", &flops_per_client_},
        std::pair{"full_model_bytes", &full_model_bytes_per_client_}}) {
    saved[name] = {mean->sum, mean->count};
  }
  return saved;
}

void Accounting::restore(const nlohmann::json& saved) {
  for (const auto& [name, mean] :
       {std::pair{"bytes", &bytes_per_client_}, std::pair{"flops", &flops_per_client_},
        std::pair{"full_model_bytes", &full_model_bytes_per_client_}}) {
    mean->sum = saved.at(name).at(0).get<double>();
    mean->count = saved.at(name).at(1).get<std::int64_t>();
  }
}

}  // namespace lorafed
