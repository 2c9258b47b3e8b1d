// Client-level differential privacy (docs/algorithms.md §Differential
// privacy): clipping, the noise's scale, adaptive clipping, local privacy,
// each strategy's update space, and what is refused.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <numeric>

#include "lorafed/error.hpp"
#include "lorafed/private_aggregation.hpp"
#include "src/privacy/central_privacy.hpp"
#include "src/privacy/local_privacy.hpp"
#include "src/privacy/update_clipping.hpp"
#include "unit/strategy_fixture.hpp"

using namespace lorafed;
using namespace lorafed::test;
using Catch::Matchers::Contains;

namespace {

const ModelSpec kVectorSpec{"vector", {{"u", 1, 1}}, {}};

// A strategy whose update is a client's "u" A-row minus the one it was
// sent, with fixed weights; it keeps the last update it was given.
class RecordingStrategy final : public Strategy, public PrivateAggregation {
 public:
  RecordingStrategy(std::vector<double> weights, std::int64_t size)
      : weights_(std::move(weights)), size_(size) {}

  void initialize(const StrategyContext&) override {}
  std::vector<FitInstruction> configure_fit(int, std::span<const ClientInfo> clients) override {
    std::vector<FitInstruction> instructions;
    for (const ClientInfo& client : clients) {
      Adapter adapter;
      adapter.layers["u"] = {at::zeros({1, size_}), at::ones({1, 1})};
      instructions.push_back(FitInstruction{client.id, adapter, {}});
    }
    return instructions;
  }
  Metrics aggregate_fit(int, std::span<const FitResult>, std::span<const Failure>) override {
    FAIL("a private strategy is aggregated through apply_update");
    return {};
  }
  NamedTensors global_delta() const override { return {}; }
  NamedTensors state() const override { return {}; }
  void load_state(const NamedTensors&) override {}

  void check_private_configuration() const override {}
  std::vector<double> update_weights(int, std::span<const FitInstruction>) const override {
    return weights_;
  }
  NamedTensors client_update(const FitInstruction& instruction,
                             const FitResult& result) const override {
    return {{"u", result.adapter.layers.at("u").a - instruction.adapter.layers.at("u").a}};
  }
  Metrics apply_update(int, std::span<const FitInstruction>, const NamedTensors& update) override {
    last_update = update.at("u").clone();
    return {};
  }

  at::Tensor last_update;

 private:
  std::vector<double> weights_;
  std::int64_t size_;
};

// A result whose "u" row is the one sent plus `change`.
FitResult result_with(const FitInstruction& instruction, const at::Tensor& change) {
  Adapter adapter;
  adapter.layers["u"] = {instruction.adapter.layers.at("u").a + change.reshape({1, -1}),
                         at::ones({1, 1})};
  return FitResult{instruction.client_id, adapter, 10, {}};
}

PrivacyConfig central(double clip, double z) {
  PrivacyConfig config;
  config.mode = PrivacyConfig::Mode::kCentral;
  config.clip_norm = clip;
  config.noise_multiplier = z;
  config.noise_seed = 11;
  return config;
}

StrategyContext context_of(const ModelSpec& spec, std::int64_t clients) {
  return StrategyContext{spec, 16.0, 5, clients};
}

std::vector<ClientInfo> clients(std::size_t count, std::int64_t rank = 4) {
  return clients_with_ranks(std::vector<std::int64_t>(count, rank));
}

double sample_stddev(const at::Tensor& values) {
  return values.to(at::kDouble).std().item<double>();
}

}  // namespace

TEST_CASE("central privacy clips every client's update to C before averaging", "[privacy]") {
  at::manual_seed(3);
  const double clip = 0.5;
  // FedAvg's update space is the factors: u_i = (A_i' − A, B_i' − B).
  CentralPrivacy strategy(make_strategy("fedavg", "weighting = \"uniform\""), central(clip, 1e-12),
                          "fedavg");
  strategy.initialize(context_of(test_spec(), 3));
  const auto instructions = strategy.configure_fit(1, clients(3));
  const NamedTensors before = to_named_tensors(instructions[0].adapter);

  // Client 0 moves far (‖u‖ = 100 C), client 1 within the bound (‖u‖ = C/2),
  // client 2 returns nothing and counts as a zero update.
  auto change = [&](double norm) {
    NamedTensors u;
    for (const auto& [name, tensor] : before) u[name] = at::randn(tensor.sizes());
    const double scale = norm / update_norm(u);
    for (auto& [name, tensor] : u) tensor.mul_(scale);
    return u;
  };
  const NamedTensors far = change(100 * clip);
  const NamedTensors near = change(clip / 2);
  auto returned = [&](const NamedTensors& u, std::size_t i) {
    NamedTensors tensors;
    for (const auto& [name, tensor] : before) tensors[name] = tensor + u.at(name);
    return FitResult{instructions[i].client_id, adapter_from_named_tensors(tensors, 16.0), 50, {}};
  };
  const std::vector<FitResult> results = {returned(far, 0), returned(near, 1)};
  const Metrics metrics =
      strategy.aggregate_fit(1, results, std::vector<Failure>{{instructions[2].client_id, "lost"}});

  // By hand: the new global is θ + (C·u_0/‖u_0‖ + u_1 + 0) / 3.
  const NamedTensors after = strategy.state();
  NamedTensors applied;
  for (const auto& [name, tensor] : before) {
    const at::Tensor expected = tensor + (far.at(name) / 100 + near.at(name)) / 3;
    CHECK(at::allclose(after.at(name), expected, 1e-5, 1e-6));
    applied[name] = after.at(name) - tensor;
  }
  // No client moved the model by more than C / m.
  CHECK(update_norm(applied) <= 2 * clip / 3 + 1e-5);
  CHECK(metrics.at("privacy_clip_norm") == clip);
  CHECK(metrics.at("privacy_sample_rate") == 1.0);
  CHECK(metrics.at("privacy_epsilon") > 0);
}

TEST_CASE("the noise's standard deviation is z · C · max p_i", "[privacy]") {
  const std::int64_t size = 200000;
  const std::vector<double> weights = {0.1, 0.2, 0.3, 0.4};
  auto inner = std::make_shared<RecordingStrategy>(weights, size);
  const double z = 1.3, clip = 0.7;
  CentralPrivacy strategy(inner, central(clip, z), "recording");
  strategy.initialize(context_of(kVectorSpec, 40));
  const auto instructions = strategy.configure_fit(1, clients(4));
  // Every client returns what it was sent: the update is the noise alone.
  std::vector<FitResult> results;
  for (const FitInstruction& instruction : instructions) {
    results.push_back(result_with(instruction, at::zeros({size})));
  }
  const Metrics metrics = strategy.aggregate_fit(1, results, {});
  const double expected = z * clip * 0.4;
  CHECK(metrics.at("privacy_noise_stddev") == Approx(expected));
  // 200,000 draws: the sample deviation's standard error is 0.16% of σ.
  CHECK(sample_stddev(inner->last_update) == Approx(expected).epsilon(0.01));
  CHECK(std::abs(inner->last_update.mean().item<double>()) < 5 * expected / std::sqrt(size));
  // 4 of 40 clients sampled: the accountant's sample rate.
  CHECK(metrics.at("privacy_sample_rate") == Approx(0.1));

  // The same seed and round draw the same noise; another round, other noise.
  CentralPrivacy again(inner, central(clip, z), "recording");
  again.initialize(context_of(kVectorSpec, 40));
  const at::Tensor first = inner->last_update;
  again.configure_fit(1, clients(4));
  again.aggregate_fit(1, results, {});
  CHECK(at::equal(first, inner->last_update));
  again.configure_fit(2, clients(4));
  again.aggregate_fit(2, results, {});
  CHECK(!at::equal(first, inner->last_update));
}

TEST_CASE("adaptive clipping tracks the target quantile of the update norms", "[privacy]") {
  auto inner = std::make_shared<RecordingStrategy>(std::vector<double>(10, 0.1), 3);
  PrivacyConfig config = central(0.1, 1.0);
  config.adaptive_clipping = true;
  config.target_quantile = 0.5;
  config.clip_learning_rate = 0.2;
  config.count_noise_stddev = 0.6;
  CentralPrivacy strategy(inner, config, "recording");
  strategy.initialize(context_of(kVectorSpec, 10));
  double late_sum = 0;
  int late = 0;
  for (int round = 1; round <= 300; ++round) {
    const double clip = strategy.clip_norm();
    const auto instructions = strategy.configure_fit(round, clients(10));
    std::vector<FitResult> results;
    // Norms 1, 2, …, 10: the median is 5.5.
    for (std::size_t i = 0; i < instructions.size(); ++i) {
      results.push_back(
          result_with(instructions[i], at::tensor({static_cast<float>(i + 1), 0.f, 0.f})));
    }
    const Metrics metrics = strategy.aggregate_fit(round, results, {});
    // The update's multiplier rises so the pair spends what z alone would:
    // z_Δ = (z⁻² − (2σ_b)⁻²)^(−1/2).
    const double z_update = 1 / std::sqrt(1 - 1 / (4 * 0.36));
    CHECK(metrics.at("privacy_noise_stddev") == Approx(z_update * clip * 0.1));
    CHECK(metrics.at("privacy_clip_norm") == clip);
    if (round > 200) {
      late_sum += strategy.clip_norm();
      ++late;
    }
  }
  const double mean_clip = late_sum / late;
  CHECK(mean_clip > 4.5);
  CHECK(mean_clip < 6.5);
}

TEST_CASE(
    "with nothing clipped and no noise, private fedhl, flexlora and fedavg aggregate as "
    "they do without",
    "[privacy]") {
  const std::vector<std::int64_t> ranks = {2, 4, 8, 4};
  for (const auto& [name, text] : std::vector<std::pair<std::string, std::string>>{
           {"fedhl", ""}, {"flexlora", "weighting = \"uniform\""}}) {
    INFO(name);
    at::manual_seed(5);
    auto plain = make_strategy(name, text);
    CentralPrivacy wrapped(make_strategy(name, text), central(1e6, 1e-15), name);
    plain->initialize(context_of(test_spec(), 4));
    wrapped.initialize(context_of(test_spec(), 4));
    NamedTensors global;
    for (const TargetLayer& layer : test_spec().targets) {
      global[layer.name + (name == "fedhl" ? ".global" : ".delta")] =
          at::randn({layer.out_features, layer.in_features});
    }
    plain->load_state(global);
    NamedTensors wrapped_state = global;
    wrapped_state["privacy.rdp"] =
        at::zeros({static_cast<std::int64_t>(RdpAccountant::orders().size())}, at::kDouble);
    wrapped_state["privacy.clip_norm"] = at::tensor({1e6}, at::kDouble);
    wrapped.load_state(wrapped_state);
    const auto sent = plain->configure_fit(1, clients_with_ranks(ranks));
    wrapped.configure_fit(1, clients_with_ranks(ranks));
    std::vector<FitResult> results;
    for (std::size_t i = 0; i < ranks.size(); ++i) {
      results.push_back({sent[i].client_id, random_adapter(ranks[i]), 50, {}});
    }
    plain->aggregate_fit(1, results, {});
    wrapped.aggregate_fit(1, results, {});
    for (const TargetLayer& layer : test_spec().targets) {
      CHECK(at::allclose(wrapped.global_delta().at(layer.name),
                         plain->global_delta().at(layer.name), 1e-4, 1e-4));
    }
  }
}

TEST_CASE("privacy refuses strategies and settings it cannot make private", "[privacy]") {
  auto refused = [](const std::string& name, const std::string& text, const std::string& why) {
    INFO(name << " " << text);
    CHECK_THROWS_WITH(CentralPrivacy(make_strategy(name, text), central(1, 1), name),
                      Contains(why));
    CHECK_THROWS_WITH(LocalPrivacyAccounting(make_strategy(name, text), central(1, 1), name),
                      Contains(why));
  };
  refused("fedavg", "", "weighting = \"data\"");
  refused("fedavg", "weighting = \"uniform\"\nevaluate_clients = true", "evaluate_clients");
  refused("flexlora", "", "weighting = \"data\"");
  refused("fedhl", "weighting = \"data\"", "example counts");
  refused("fedhl", "truncation_error = \"layer\"", "one weight");
  refused("ditto", "weighting = \"uniform\"", "personal model");
  refused("scaffold", "weighting = \"uniform\"", "does not sum clipped client updates");
  refused("hetlora", "", "does not sum clipped client updates");
  refused("pfedlora", "", "personalised");
  // And what is accepted.
  CHECK_NOTHROW(CentralPrivacy(make_strategy("fedhl"), central(1, 1), "fedhl"));
  CHECK_NOTHROW(CentralPrivacy(make_strategy("fedprox", "weighting = \"uniform\""), central(1, 1),
                               "fedprox"));
  CHECK_NOTHROW(CentralPrivacy(make_strategy("flexlora", "weighting = \"uniform\""), central(1, 1),
                               "flexlora"));
}

TEST_CASE("the privacy spent and the clip norm survive a checkpoint", "[privacy]") {
  PrivacyConfig config = central(1.0, 1.1);
  config.adaptive_clipping = true;
  config.count_noise_stddev = 0.6;
  auto run = [&](CentralPrivacy& strategy, int round) {
    const auto instructions = strategy.configure_fit(round, clients(3));
    std::vector<FitResult> results;
    for (const FitInstruction& instruction : instructions) {
      results.push_back(result_with(instruction, at::full({4}, 2.0)));
    }
    return strategy.aggregate_fit(round, results, {});
  };
  auto inner = std::make_shared<RecordingStrategy>(std::vector<double>(3, 1.0 / 3), 4);
  CentralPrivacy whole(inner, config, "recording");
  whole.initialize(context_of(kVectorSpec, 30));
  for (int round = 1; round <= 3; ++round) run(whole, round);
  const NamedTensors saved = whole.state();
  const Metrics continued = run(whole, 4);

  CentralPrivacy resumed(inner, config, "recording");
  resumed.initialize(context_of(kVectorSpec, 30));
  resumed.load_state(saved);
  const Metrics after_resume = run(resumed, 4);
  CHECK(after_resume.at("privacy_epsilon") == continued.at("privacy_epsilon"));
  CHECK(after_resume.at("privacy_clip_norm") == continued.at("privacy_clip_norm"));
  // Every norm (4) is above C: nothing left unclipped, so C grew.
  CHECK(after_resume.at("privacy_clip_norm") > 1.0);
  CHECK_THROWS_WITH(resumed.load_state({}), Contains("no privacy accountant state"));
}

namespace {

// Returns what it was sent plus a fixed change, or with control variates.
class ShiftingProcedure final : public ClientProcedure {
 public:
  explicit ShiftingProcedure(double shift, bool with_control = false)
      : shift_(shift), with_control_(with_control) {}
  FitOutcome fit(ModelBackend&, const FitInstruction& instruction, const ClientContext&) override {
    FitOutcome outcome{instruction.adapter.clone(), 30, {{"train_loss", 0.25}}};
    for (auto& [name, factors] : outcome.adapter.layers) factors.a.add_(shift_);
    if (with_control_) outcome.control = instruction.adapter.clone();
    return outcome;
  }
  EvaluateOutcome evaluate(ModelBackend&, const EvaluateInstruction&,
                           const ClientContext&) override {
    return {30, 0.5, {}};
  }

 private:
  double shift_;
  bool with_control_;
};

class NoModel final : public ModelBackend {
 public:
  ModelSpec spec() const override { return kVectorSpec; }
  std::int64_t num_train_examples() const override { return 30; }
  void install_adapter(const Adapter&) override {}
  Adapter adapter() const override { return {}; }
  void install_merged_delta(const NamedTensors&) override {}
  void merge_adapter(const Adapter&) override {}
  TrainReport train(ParameterGroup, const TrainOptions&, std::uint64_t) override { return {}; }
  EvalReport evaluate() override { return {30, 0.5, {}}; }
};

}  // namespace

TEST_CASE("local privacy clips and noises a client's update before it leaves", "[privacy]") {
  PrivacyConfig config = central(0.5, 1e-9);
  config.mode = PrivacyConfig::Mode::kLocal;
  NoModel model;
  Adapter sent;
  sent.layers["u"] = {at::randn({1, 50000}), at::zeros({1, 1})};
  const FitInstruction instruction{"client-0", sent, {}};
  ClientContext context;
  context.client_index = 0;
  context.round = 1;

  // Each A entry moves by 1: ‖u‖ = √50000, clipped to C.
  LocalPrivacyProcedure clipping(std::make_shared<ShiftingProcedure>(1.0), config);
  const FitOutcome clipped = clipping.fit(model, instruction, context);
  const at::Tensor change = clipped.adapter.layers.at("u").a - sent.layers.at("u").a;
  CHECK(change.norm().item<double>() == Approx(0.5).epsilon(1e-4));
  CHECK(at::allclose(change, at::full_like(change, 0.5 / std::sqrt(50000.0)), 1e-5, 1e-6));
  // Nothing else about the client's data leaves with it.
  CHECK(clipped.num_examples == 0);
  CHECK(clipped.metrics.empty());

  // With no change, what leaves is the noise: standard deviation z · C.
  config.noise_multiplier = 2.0;
  LocalPrivacyProcedure noising(std::make_shared<ShiftingProcedure>(0.0), config);
  const FitOutcome noised = noising.fit(model, instruction, context);
  const at::Tensor noise = noised.adapter.layers.at("u").a - sent.layers.at("u").a;
  CHECK(sample_stddev(noise) == Approx(1.0).epsilon(0.02));

  LocalPrivacyProcedure leaking(std::make_shared<ShiftingProcedure>(0.0, true), config);
  CHECK_THROWS_WITH(leaking.fit(model, instruction, context), Contains("control variates"));
}

TEST_CASE("local privacy reports ε for the client that sent the most updates", "[privacy]") {
  PrivacyConfig config = central(1.0, 2.0);
  config.mode = PrivacyConfig::Mode::kLocal;
  LocalPrivacyAccounting strategy(make_strategy("fedavg", "weighting = \"uniform\""), config,
                                  "fedavg");
  strategy.initialize(context_of(test_spec(), 3));
  Metrics metrics;
  for (int round = 1; round <= 3; ++round) {
    const auto instructions = strategy.configure_fit(round, clients(round == 2 ? 2 : 3));
    std::vector<FitResult> results;
    for (const FitInstruction& instruction : instructions) {
      results.push_back({instruction.client_id, instruction.adapter, 0, {}});
    }
    metrics = strategy.aggregate_fit(round, results, {});
  }
  // Clients 0 and 1 sent 3 updates: three Gaussian releases, no sampling.
  RdpAccountant three;
  for (int i = 0; i < 3; ++i) three.add(1.0, 2.0);
  CHECK(metrics.at("privacy_epsilon") == Approx(three.epsilon(1e-5)));
  // Counted across a checkpoint.
  LocalPrivacyAccounting resumed(make_strategy("fedavg", "weighting = \"uniform\""), config,
                                 "fedavg");
  resumed.initialize(context_of(test_spec(), 3));
  resumed.load_state(strategy.state());
  const auto instructions = resumed.configure_fit(4, clients(1));
  const std::vector<FitResult> results = {
      FitResult{instructions[0].client_id, instructions[0].adapter, 0, {}}};
  const Metrics fourth = resumed.aggregate_fit(4, results, {});
  RdpAccountant four;
  for (int i = 0; i < 4; ++i) four.add(1.0, 2.0);
  CHECK(fourth.at("privacy_epsilon") == Approx(four.epsilon(1e-5)));
}

TEST_CASE("[privacy] keys are checked", "[privacy][config]") {
  auto read = [](const std::string& text) {
    return PrivacyConfig::read(ConfigTable::parse_string(text, "test.toml"), 100);
  };
  CHECK(!read("").enabled());
  const PrivacyConfig config = read(
      "mode = \"central\"\nclip_norm = 0.5\nnoise_multiplier = 1.2\ndelta = 1e-4\n"
      "adaptive_clipping = true\ntarget_quantile = 0.7\nnoise_seed = 9");
  CHECK(config.mode == PrivacyConfig::Mode::kCentral);
  CHECK(config.clip_norm == 0.5);
  CHECK(config.noise_multiplier == 1.2);
  CHECK(config.delta == 1e-4);
  CHECK(config.adaptive_clipping);
  CHECK(config.target_quantile == 0.7);
  CHECK(config.noise_seed == 9u);
  CHECK_THROWS_WITH(read("mode = \"global\""), Contains("\"central\" or \"local\""));
  CHECK_THROWS_WITH(read("mode = \"central\"\nnoise_multiplier = 0"), Contains("noise_multiplier"));
  CHECK_THROWS_WITH(read("mode = \"central\"\nclip_norm = -1"), Contains("clip_norm"));
  CHECK_THROWS_WITH(read("mode = \"central\"\ndelta = 0.01"), Contains("delta"));
  CHECK_THROWS_WITH(read("mode = \"central\"\nclip_norm = nan"), Contains("clip_norm"));
  CHECK_THROWS_WITH(read("mode = \"local\"\nadaptive_clipping = true"), Contains("central"));
  CHECK_THROWS_WITH(read("mode = \"central\"\nadaptive_clipping = true\nnoise_multiplier = 2\n"
                         "count_noise_stddev = 0.9"),
                    Contains("count_noise_stddev"));
}
