#pragma once

#include <ATen/ATen.h>

#include <string>

#include "lorafed/config.hpp"
#include "lorafed/strategy.hpp"
#include "src/plugin_registry.hpp"

namespace lorafed::test {

// A strategy made by its real plugin, from TOML text for its [strategy] table.
inline std::shared_ptr<Strategy> make_strategy(const std::string& name,
                                               const std::string& config_text = "") {
  static const PluginRegistry registry({LORAFED_BUILD_PLUGIN_DIR});
  const auto plugin = registry.strategy(name);
  const auto config = ConfigTable::parse_string(config_text, "test.toml");
  return keep_library_alive(plugin.factory->create_strategy(config), plugin.factory);
}

inline const ModelSpec& test_spec() {
  static const ModelSpec spec{"test-model", {{"fc1", 12, 10}, {"head", 10, 6}}, {}};
  return spec;
}

// Random factors at `rank` for every layer of test_spec().
inline Adapter random_adapter(std::int64_t rank, double alpha = 16.0) {
  Adapter adapter;
  adapter.alpha = alpha;
  for (const TargetLayer& layer : test_spec().targets) {
    adapter.layers[layer.name] = {at::randn({rank, layer.in_features}),
                                  at::randn({layer.out_features, rank})};
  }
  return adapter;
}

inline std::vector<ClientInfo> clients_with_ranks(const std::vector<std::int64_t>& ranks) {
  std::vector<ClientInfo> clients;
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    clients.push_back(ClientInfo{"client-" + std::to_string(i), ranks[i],
                                 static_cast<std::int64_t>(100 * (i + 1)), "test-model"});
  }
  return clients;
}

// The rank-r truncation of m by a full SVD, written here independently of the SDK.
inline at::Tensor reference_truncation(const at::Tensor& m, std::int64_t rank) {
  rank = std::min({rank, m.size(0), m.size(1)});
  auto [u, s, vh] = at::linalg_svd(m.to(at::kDouble), false);
  return at::matmul(u.narrow(1, 0, rank) * s.narrow(0, 0, rank), vh.narrow(0, 0, rank))
      .to(at::kFloat);
}

}  // namespace lorafed::test
