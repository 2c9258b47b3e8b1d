#include "cli/aggregate_command.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <cmath>
#include <filesystem>
#include <limits>

#include "lorafed/adapter.hpp"
#include "lorafed/config.hpp"
#include "lorafed/error.hpp"
#include "lorafed/safetensors.hpp"
#include "lorafed/strategy.hpp"

namespace lorafed::cli {
namespace {

struct ClientFile {
  std::string path;
  std::int64_t examples = 1;
};

// PATH[:EXAMPLES]: a suffix of digits after the last colon is the example
// count; anything else is part of the path.
ClientFile parse_client(const std::string& text) {
  ClientFile client{text, 1};
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size() ||
      text.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
    return client;
  }
  client.path = text.substr(0, colon);
  const std::string count = text.substr(colon + 1);
  const auto [end, error] =
      std::from_chars(count.data(), count.data() + count.size(), client.examples);
  if (error != std::errc() || client.examples < 1) {
    throw ConfigError("--client " + text + ": the example count " + count +
                      " must be an integer from 1 to " +
                      std::to_string(std::numeric_limits<std::int64_t>::max()));
  }
  return client;
}

bool positive_finite(double value) {
  return std::isfinite(value) && value > 0;
}

// The file's lora_alpha metadata, or `fallback` (--alpha) when it has none.
double alpha_of(const SafetensorsFile& file, const std::string& path, double fallback) {
  const auto found = file.metadata.find("lora_alpha");
  if (found == file.metadata.end()) return fallback;
  const std::string& text = found->second;
  double alpha = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), alpha);
  if (error != std::errc() || end != text.data() + text.size() || !positive_finite(alpha)) {
    throw FormatError("client file '" + path + "': metadata lora_alpha = \"" + text +
                      "\" is not a positive finite number");
  }
  return alpha;
}

// The model spec the factors imply: layer names from "<layer>.lora_A", in from
// A's columns, out from B's rows.
ModelSpec spec_of(const Adapter& adapter, const std::string& path) {
  ModelSpec spec;
  spec.model_id = "offline";
  for (const auto& [name, factors] : adapter.layers) {
    if (factors.a.dim() != 2 || factors.b.dim() != 2) {
      const bool a_wrong = factors.a.dim() != 2;
      throw FormatError("client file '" + path + "': tensor '" + name +
                        (a_wrong ? ".lora_A" : ".lora_B") + "' is not a matrix (" +
                        std::to_string((a_wrong ? factors.a : factors.b).dim()) + " dimensions)");
    }
    spec.targets.push_back(TargetLayer{name, factors.a.size(1), factors.b.size(0)});
  }
  return spec;
}

}  // namespace

int aggregate(const AggregateOptions& options, const PluginRegistry& registry) {
  ConfigTable strategy_table;
  std::string name = options.strategy;
  if (!options.config.empty()) {
    strategy_table = ConfigTable::parse_file(options.config).section("strategy");
    const std::string configured = strategy_table.require<std::string>("name");
    if (!name.empty() && name != configured) {
      throw ConfigError("--strategy " + name + " differs from [strategy] name = \"" + configured +
                        "\" in " + options.config);
    }
    name = configured;
  }
  if (name.empty()) throw ConfigError("name the strategy with --strategy or --config");
  if (options.clients.empty()) throw ConfigError("give at least one --client PATH[:EXAMPLES]");
  if (!positive_finite(options.alpha)) {
    throw ConfigError(
        fmt::format("--alpha must be a positive finite number, got {:g}", options.alpha));
  }

  std::vector<ClientInfo> infos;
  std::vector<FitResult> results;
  ModelSpec spec;
  for (std::size_t i = 0; i < options.clients.size(); ++i) {
    const ClientFile client = parse_client(options.clients[i]);
    const SafetensorsFile file = load_safetensors(client.path);
    const double alpha = alpha_of(file, client.path, options.alpha);
    Adapter adapter;
    try {
      adapter = adapter_from_named_tensors(file.tensors, alpha);
    } catch (const FormatError& error) {
      throw FormatError("client file '" + client.path + "': " + error.what());
    }
    if (i == 0) spec = spec_of(adapter, client.path);
    try {
      validate_adapter(adapter, spec, INT64_MAX);
    } catch (const FormatError& error) {
      throw FormatError("client file '" + client.path + "': " + error.what());
    }
    const std::string id = std::filesystem::path(client.path).stem().string();
    infos.push_back(ClientInfo{id, adapter.rank(), client.examples, spec.model_id});
    results.push_back(FitResult{id, std::move(adapter), client.examples, {}});
  }

  const auto plugin = registry.strategy(name);
  strategy_table.mark_read("name");
  auto strategy =
      keep_library_alive(plugin.factory->create_strategy(strategy_table), plugin.factory);
  strategy_table.reject_unknown_keys();
  strategy->initialize(StrategyContext{spec, results.front().adapter.alpha, options.seed});
  if (!options.state.empty()) strategy->load_state(load_safetensors(options.state).tensors);
  // configure_fit first: strategies such as FedHL aggregate against what they sent.
  const auto instructions = strategy->configure_fit(options.round, infos);
  for (std::size_t i = 0; i < instructions.size(); ++i) {
    if (instructions[i].adapter.rank() != results[i].adapter.rank()) {
      throw FormatError("client '" + infos[i].id + "' has rank " +
                        std::to_string(results[i].adapter.rank()) + " but " + name +
                        " would send it rank " + std::to_string(instructions[i].adapter.rank()));
    }
  }
  const Metrics metrics = strategy->aggregate_fit(options.round, results, {});
  save_safetensors(options.output, strategy->state(),
                   {{"lorafed_strategy", name}, {"lorafed_round", std::to_string(options.round)}});
  spdlog::info("aggregated {} clients with {}; new state in {}", results.size(), name,
               options.output);
  for (const auto& [metric, value] : metrics) spdlog::info("  {} = {}", metric, value);
  return 0;
}

}  // namespace lorafed::cli
