// What the server keeps of a client's reported numbers.
#include <ATen/ATen.h>

#include <catch2/catch.hpp>

#include <limits>

#include "lorafed/error.hpp"
#include "src/server/update_checks.hpp"

TEST_CASE("non-finite metrics of a client are left out, finite ones kept", "[update_checks]") {
  lorafed::Metrics metrics = {{"train_loss", std::numeric_limits<double>::quiet_NaN()},
                              {"accuracy", 0.5},
                              {"fit_s", std::numeric_limits<double>::infinity()},
                              {"steps", 12}};
  const auto dropped = lorafed::drop_non_finite(metrics);
  CHECK(dropped == std::vector<std::string>{"fit_s", "train_loss"});
  CHECK(metrics == lorafed::Metrics{{"accuracy", 0.5}, {"steps", 12}});
}

TEST_CASE("a client's control variate change must have its adapter's layout", "[update_checks]") {
  using lorafed::NamedTensors;
  const lorafed::ModelSpec spec{"test-model", {{"fc1", 12, 10}}, {}};
  const NamedTensors adapter = {{"fc1.lora_A", at::randn({4, 12})},
                                {"fc1.lora_B", at::randn({10, 4})}};
  auto with_control = [&](const at::Tensor& a, const at::Tensor& b) {
    NamedTensors tensors = adapter;
    tensors.emplace("control.fc1.lora_A", a);
    tensors.emplace("control.fc1.lora_B", b);
    return tensors;
  };
  const auto checked =
      lorafed::check_update(with_control(at::ones({4, 12}), at::ones({10, 4})), 8.0, spec, 4);
  CHECK(at::equal(checked.control.layers.at("fc1").a, at::ones({4, 12})));
  CHECK(checked.adapter.layers.size() == 1);
  CHECK(lorafed::check_update(adapter, 8.0, spec, 4).control.layers.empty());

  // Another rank than the adapter's, a missing factor, a non-finite value.
  CHECK_THROWS_WITH(
      lorafed::check_update(with_control(at::ones({2, 12}), at::ones({10, 2})), 8.0, spec, 4),
      Catch::Matchers::Contains("control variate"));
  NamedTensors half = adapter;
  half.emplace("control.fc1.lora_A", at::ones({4, 12}));
  CHECK_THROWS_AS(lorafed::check_update(half, 8.0, spec, 4), lorafed::FormatError);
  CHECK_THROWS_AS(
      lorafed::check_update(with_control(at::full({4, 12}, NAN), at::ones({10, 4})), 8.0, spec, 4),
      lorafed::FormatError);
}
