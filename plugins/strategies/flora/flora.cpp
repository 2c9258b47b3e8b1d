// FLoRA: stack the clients' factors so the stack's product is Σ p_i s_i B_i A_i;
// clients merge it into their base and start a fresh adapter every round
// (docs/algorithms.md §FLoRA).
#include <ATen/ATen.h>

#include <algorithm>

#include "lorafed/error.hpp"
#include "lorafed/lora_math.hpp"
#include "lorafed/plugin.hpp"
#include "lorafed/seed.hpp"
#include "lorafed/weighting.hpp"

namespace {

using namespace lorafed;

// Stacks as one adapter of rank Σ r_i whose scale is 1 (alpha = rank), so
// that its product is exactly Σ weight_i B_i A_i.
Adapter concatenate(const std::vector<Adapter>& stacks) {
  Adapter joined;
  if (stacks.empty()) return joined;
  for (const auto& [name, unused] : stacks.front().layers) {
    std::vector<at::Tensor> as, bs;
    for (const Adapter& stack : stacks) {
      as.push_back(stack.layers.at(name).a);
      bs.push_back(stack.layers.at(name).b);
    }
    joined.layers[name] = LoraFactors{at::cat(as, 0), at::cat(bs, 1)};
  }
  joined.alpha = static_cast<double>(joined.rank());
  return joined;
}

// FNV-1a: the same on every build, so every deployment draws the same init.
std::uint64_t id_hash(const std::string& id) {
  std::uint64_t hash = 1469598103934665603ULL;
  for (unsigned char c : id) hash = (hash ^ c) * 1099511628211ULL;
  return hash;
}

class FLora final : public Strategy {
 public:
  FLora(ExampleWeighting weighting, bool evaluate_clients)
      : weighting_(weighting), evaluate_clients_(evaluate_clients) {}

  void initialize(const StrategyContext& context) override {
    context_ = context;
    stacks_.clear();
    synced_.clear();
    global_.clear();
    for (const TargetLayer& layer : context.spec.targets) {
      global_[layer.name] = at::zeros({layer.out_features, layer.in_features}, at::kFloat);
    }
  }

  std::vector<FitInstruction> configure_fit(int round,
                                            std::span<const ClientInfo> clients) override {
    std::vector<FitInstruction> instructions;
    for (const ClientInfo& client : clients) {
      FitInstruction instruction;
      instruction.client_id = client.id;
      // A fresh LoRA adapter every round (B = 0: the merged model is the start).
      instruction.adapter = init_adapter(
          context_.spec, client.rank, context_.alpha,
          derive_seed(context_.seed, {static_cast<std::uint64_t>(round), id_hash(client.id)}));
      instruction.merge = unmerged_stacks(client.id);
      synced_[client.id] = stacks_.size();
      instructions.push_back(std::move(instruction));
    }
    return instructions;
  }

  Metrics aggregate_fit(int, std::span<const FitResult> results,
                        std::span<const Failure>) override {
    if (results.empty()) return {};
    const std::vector<double> p = example_weights(results, weighting_);
    Adapter stack;
    NamedTensors next;
    for (const TargetLayer& layer : context_.spec.targets) {
      std::vector<at::Tensor> bs, as;
      for (std::size_t i = 0; i < results.size(); ++i) {
        const LoraFactors& f = results[i].adapter.layers.at(layer.name);
        // [p_1 s_1 B_1 … p_n s_n B_n] · [A_1; …; A_n] = Σ p_i s_i B_i A_i.
        bs.push_back(f.b * (p[i] * results[i].adapter.scale()));
        as.push_back(f.a);
      }
      stack.layers[layer.name] = LoraFactors{at::cat(as, 0), at::cat(bs, 1)};
    }
    stack.alpha = static_cast<double>(stack.rank());
    for (const auto& [name, delta] : stack.dense_delta()) next[name] = global_.at(name) + delta;
    global_ = std::move(next);
    stacks_.push_back(std::move(stack));
    return {{"stack_rank", static_cast<double>(stacks_.back().rank())}};
  }

  // A client's model after merging everything stacked so far is the global
  // model: it evaluates its merged base plus the stacks it has not merged yet.
  std::vector<EvaluateInstruction> configure_evaluate(
      int, std::span<const ClientInfo> clients) override {
    if (!evaluate_clients_) return {};
    std::vector<EvaluateInstruction> instructions;
    for (const ClientInfo& client : clients) {
      instructions.push_back(EvaluateInstruction{client.id, unmerged_stacks(client.id), {}});
    }
    return instructions;
  }

  NamedTensors global_delta() const override { return global_; }

  // The merged product. Stacks are not part of the state: after a resume,
  // clients receive the stacks of the rounds that follow.
  NamedTensors state() const override {
    NamedTensors state;
    for (const auto& [name, w] : global_) state[name + ".merged"] = w;
    return state;
  }
  void load_state(const NamedTensors& state) override {
    for (const TargetLayer& layer : context_.spec.targets) {
      const auto found = state.find(layer.name + ".merged");
      if (found == state.end()) throw FormatError("flora state lacks '" + layer.name + ".merged'");
      global_[layer.name] = found->second.to(at::kFloat).contiguous();
    }
  }

 private:
  // Every stack this client has not merged yet, in order, as one adapter.
  Adapter unmerged_stacks(const std::string& client_id) const {
    const std::size_t from = synced_.contains(client_id) ? synced_.at(client_id) : 0;
    return concatenate(
        std::vector<Adapter>(stacks_.begin() + static_cast<std::ptrdiff_t>(from), stacks_.end()));
  }

  ExampleWeighting weighting_;
  bool evaluate_clients_;
  StrategyContext context_;
  NamedTensors global_;                        // Σ of every round's stack product
  std::vector<Adapter> stacks_;                // each round's stack, in order
  std::map<std::string, std::size_t> synced_;  // stacks each client has been sent
};

// Client side: merge what the server stacked, then train a fresh adapter
// (LoraTrainingProcedure does both, in that order).
class FLoraFactory final : public StrategyFactory {
 public:
  std::unique_ptr<Strategy> create_strategy(const ConfigTable& config) const override {
    return std::make_unique<FLora>(read_example_weighting(config),
                                   config.get<bool>("evaluate_clients", false));
  }
  std::unique_ptr<ClientProcedure> create_client_procedure(const ConfigTable&) const override {
    return std::make_unique<LoraTrainingProcedure>();
  }
};

}  // namespace

LORAFED_STRATEGY_PLUGIN("flora", "0.1.0", FLoraFactory)
