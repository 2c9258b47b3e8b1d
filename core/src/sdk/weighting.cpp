#include "lorafed/weighting.hpp"

#include "lorafed/lora_math.hpp"

namespace lorafed {

ExampleWeighting read_example_weighting(const ConfigTable& config) {
  const std::string weighting = config.get<std::string>("weighting", "data");
  if (weighting == "data") return ExampleWeighting::kData;
  if (weighting == "uniform") return ExampleWeighting::kUniform;
  throw_config_error(config, "weighting",
                     "must be \"data\" or \"uniform\", got \"" + weighting + "\"");
}

std::vector<double> example_weights(std::span<const FitResult> results,
                                    ExampleWeighting weighting) {
  std::vector<double> raw;
  for (const FitResult& result : results) {
    raw.push_back(weighting == ExampleWeighting::kData ? static_cast<double>(result.num_examples)
                                                       : 1.0);
  }
  return normalise_weights(raw);
}

}  // namespace lorafed
