#include "lorafed/truncating_strategy.hpp"

#include "lorafed/error.hpp"
#include "lorafed/seed.hpp"

namespace lorafed {

TruncatingStrategy::Options TruncatingStrategy::read_options(const ConfigTable& config,
                                                             std::string state_suffix) {
  Options options;
  options.state_suffix = std::move(state_suffix);
  const std::string svd = config.get<std::string>("svd", "exact");
  if (svd == "exact") {
    options.svd.method = SvdMethod::kExact;
  } else if (svd == "randomized") {
    options.svd.method = SvdMethod::kRandomized;
  } else {
    throw_config_error(config, "svd", "must be \"exact\" or \"randomized\", got \"" + svd + "\"");
  }
  RandomizedSvdOptions& randomized = options.svd.randomized;
  randomized.oversampling = config.get<std::int64_t>("svd_oversampling", randomized.oversampling);
  if (randomized.oversampling < 0)
    throw_config_error(config, "svd_oversampling", "must not be negative");
  randomized.power_iterations =
      config.get<std::int64_t>("svd_power_iterations", randomized.power_iterations);
  if (randomized.power_iterations < 0)
    throw_config_error(config, "svd_power_iterations", "must not be negative");
  options.evaluate_clients = config.get<bool>("evaluate_clients", false);
  return options;
}

TruncatingStrategy::TruncatingStrategy(Options options) : options_(std::move(options)) {}
TruncatingStrategy::~TruncatingStrategy() = default;

void TruncatingStrategy::initialize(const StrategyContext& context) {
  context_ = context;
  global_ = TruncatedGlobal(context.spec, options_.svd);
}

std::vector<FitInstruction> TruncatingStrategy::configure_fit(int round,
                                                              std::span<const ClientInfo> clients) {
  std::vector<FitInstruction> instructions;
  for (const ClientInfo& client : clients) {
    instructions.push_back(
        FitInstruction{client.id, client_adapter(round, clients, client.rank), {}});
  }
  return instructions;
}

std::vector<EvaluateInstruction> TruncatingStrategy::configure_evaluate(
    int round, std::span<const ClientInfo> clients) {
  if (!options_.evaluate_clients) return {};
  std::vector<EvaluateInstruction> instructions;
  for (const ClientInfo& client : clients) {
    // The model the client would start the next round from, so the
    // truncation computed here serves configure_fit(round + 1) too.
    instructions.push_back(
        EvaluateInstruction{client.id, client_adapter(round + 1, clients, client.rank), {}});
  }
  return instructions;
}

NamedTensors TruncatingStrategy::global_delta() const {
  return global_.weights();
}
NamedTensors TruncatingStrategy::state() const {
  return global_.state(options_.state_suffix);
}
void TruncatingStrategy::load_state(const NamedTensors& state) {
  global_.load_state(state, options_.state_suffix);
}

NamedTensors TruncatingStrategy::product_change(const FitInstruction& instruction,
                                                const FitResult& result) {
  NamedTensors change = result.adapter.dense_delta();
  for (auto& [name, sent] : instruction.adapter.dense_delta()) {
    const auto found = change.find(name);
    if (found == change.end())
      throw FormatError(result.client_id + ": adapter lacks layer '" + name + "'");
    found->second.sub_(sent);
  }
  return change;
}

Adapter TruncatingStrategy::client_adapter(int round, std::span<const ClientInfo> clients,
                                           std::int64_t rank) {
  return global_.adapter_for(clients, rank, context_.alpha,
                             derive_seed(context_.seed, {static_cast<std::uint64_t>(round)}));
}

}  // namespace lorafed
