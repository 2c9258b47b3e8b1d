#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include "lorafed/adapter.hpp"
#include "lorafed/error.hpp"
#include "src/sdk/finite.hpp"

using namespace lorafed;
using Catch::Matchers::Contains;

namespace {
const ModelSpec kSpec{"m", {{"fc1", 6, 5}, {"head", 5, 3}}, {}};
}

TEST_CASE("init_adapter follows LoRA: B zero, A bounded by 1/sqrt(in), seeded", "[adapter]") {
  const Adapter adapter = init_adapter(kSpec, 4, 8.0, 9);
  CHECK(adapter.rank() == 4);
  CHECK(adapter.scale() == 2.0);
  const auto& fc1 = adapter.layers.at("fc1");
  CHECK(fc1.a.sizes() == at::IntArrayRef({4, 6}));
  CHECK(fc1.b.sizes() == at::IntArrayRef({5, 4}));
  CHECK(fc1.b.abs().max().item<float>() == 0.0f);
  CHECK(fc1.a.abs().max().item<float>() <= 1.0f / std::sqrt(6.0f));
  CHECK(at::equal(init_adapter(kSpec, 4, 8.0, 9).layers.at("fc1").a, fc1.a));
  CHECK(!at::equal(init_adapter(kSpec, 4, 8.0, 10).layers.at("fc1").a, fc1.a));
  validate_adapter(adapter, kSpec, 4);
}

TEST_CASE("named tensors use PEFT's factor names and convert back", "[adapter]") {
  const Adapter adapter = init_adapter(kSpec, 2, 16.0, 1);
  const NamedTensors tensors = to_named_tensors(adapter);
  CHECK(tensors.contains("fc1.lora_A"));
  CHECK(tensors.contains("head.lora_B"));
  const Adapter back = adapter_from_named_tensors(tensors, 16.0);
  CHECK(at::equal(back.layers.at("head").a, adapter.layers.at("head").a));
  CHECK_THROWS_WITH(adapter_from_named_tensors({{"fc1.weight", at::zeros({1})}}, 1.0),
                    Contains("not a LoRA factor"));
}

TEST_CASE("an adapter's state carries its alpha, and a state without one is refused", "[adapter]") {
  const Adapter adapter = init_adapter(kSpec, 2, 12.0, 1);
  const Adapter back = adapter_from_state(adapter_state(adapter));
  CHECK(back.alpha == 12.0);
  CHECK(at::equal(back.layers.at("fc1").a, adapter.layers.at("fc1").a));
  CHECK(at::equal(back.layers.at("head").b, adapter.layers.at("head").b));
  CHECK_THROWS_WITH(adapter_from_state(to_named_tensors(adapter)), Contains("'alpha'"));
  NamedTensors negative = adapter_state(adapter);
  negative["alpha"] = at::scalar_tensor(-1.0, at::kDouble);
  CHECK_THROWS_WITH(adapter_from_state(negative), Contains("alpha is invalid"));
}

TEST_CASE("dense_delta is scale times B A", "[adapter]") {
  Adapter adapter = init_adapter(kSpec, 2, 16.0, 1);
  adapter.layers.at("fc1").b = at::randn({5, 2});
  const at::Tensor expected =
      8.0 * at::matmul(adapter.layers.at("fc1").b, adapter.layers.at("fc1").a);
  CHECK(at::allclose(adapter.dense_delta().at("fc1"), expected));
}

TEST_CASE("validate_adapter rejects wrong shapes, ranks, layers and non-finite values",
          "[adapter]") {
  SECTION("wrong shape") {
    Adapter adapter = init_adapter(kSpec, 2, 16.0, 1);
    adapter.layers.at("fc1").a = at::zeros({2, 7});
    CHECK_THROWS_WITH(validate_adapter(adapter, kSpec, 8),
                      Contains("layer 'fc1'") && Contains("expected A 2×6"));
  }
  SECTION("rank above the client's maximum") {
    CHECK_THROWS_WITH(validate_adapter(init_adapter(kSpec, 4, 16.0, 1), kSpec, 2),
                      Contains("outside 1..2"));
  }
  SECTION("missing layer") {
    Adapter adapter = init_adapter(kSpec, 2, 16.0, 1);
    adapter.layers.erase("head");
    CHECK_THROWS_WITH(validate_adapter(adapter, kSpec, 8), Contains("lacks target layer 'head'"));
  }
  SECTION("an empty adapter (nothing sent) is valid") {
    CHECK_NOTHROW(validate_adapter(Adapter{}, kSpec, 8));
  }
  SECTION("extra layer") {
    Adapter adapter = init_adapter(kSpec, 2, 16.0, 1);
    adapter.layers["fc9"] = adapter.layers.at("fc1");
    CHECK_THROWS_WITH(validate_adapter(adapter, kSpec, 8), Contains("'fc9' is not a target"));
  }
  SECTION("NaN") {
    Adapter adapter = init_adapter(kSpec, 2, 16.0, 1);
    adapter.layers.at("head").b[0][0] = NAN;
    CHECK_THROWS_WITH(validate_adapter(adapter, kSpec, 8), Contains("NaN, Inf"));
  }
  SECTION("a finite factor too large to sum (a diverged or hostile client's)") {
    Adapter adapter = init_adapter(kSpec, 2, 16.0, 1);
    adapter.layers.at("fc1").a[1][3] = 65536.0f;  // 2^16
    CHECK_THROWS_WITH(validate_adapter(adapter, kSpec, 8), Contains("magnitude 2^16 or more"));
    adapter.layers.at("fc1").a[1][3] = -65535.0f;  // just below
    CHECK_NOTHROW(validate_adapter(adapter, kSpec, 8));
  }
  SECTION("mixed ranks") {
    Adapter adapter = init_adapter(kSpec, 2, 16.0, 1);
    adapter.layers.at("head") = init_adapter(kSpec, 3, 16.0, 1).layers.at("head");
    CHECK_THROWS_WITH(validate_adapter(adapter, kSpec, 8), Contains("differs"));
  }
  SECTION("a scalar factor (a hostile peer's) is a FormatError, not an index error") {
    for (const std::string layer : {"fc1", "head"}) {
      Adapter adapter = init_adapter(kSpec, 2, 16.0, 1);
      adapter.layers.at(layer).a = at::zeros({});
      CHECK_THROWS_MATCHES(validate_adapter(adapter, kSpec, 8), FormatError,
                           Catch::Matchers::Message("layer '" + layer +
                                                    "': factors must be matrices, got A a "
                                                    "scalar and B " +
                                                    (layer == "fc1" ? "5×2" : "3×2")));
    }
  }
  SECTION("wrong dtype") {
    Adapter adapter = init_adapter(kSpec, 2, 16.0, 1);
    adapter.layers.at("fc1").a = adapter.layers.at("fc1").a.to(at::kDouble);
    CHECK_THROWS_WITH(validate_adapter(adapter, kSpec, 8), Contains("float32"));
  }
}

TEST_CASE("all_finite finds NaN and Inf anywhere, in place or through isfinite", "[adapter]") {
  // 37 elements: two blocks of 16 and a tail of 5, so every code path is hit.
  for (const std::int64_t position : {0, 15, 16, 31, 32, 36}) {
    for (const float bad :
         {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
          -std::numeric_limits<float>::infinity()}) {
      at::Tensor tensor = at::ones({37});
      CHECK(lorafed::all_finite(tensor));
      tensor[position] = bad;
      INFO("position " << position << " value " << bad);
      CHECK_FALSE(lorafed::all_finite(tensor));
      CHECK_FALSE(lorafed::all_finite(tensor.to(at::kDouble)));    // not float32
      CHECK_FALSE(lorafed::all_finite(tensor.view({37, 1}).t()));  // not contiguous
    }
  }
  CHECK(lorafed::all_finite(at::empty({0})));
  at::Tensor largest = at::full({40}, std::numeric_limits<float>::max());
  CHECK(lorafed::all_finite(largest));
}

TEST_CASE("all_within bounds magnitudes below 2^L on every path", "[adapter]") {
  for (const std::int64_t position : {0, 15, 16, 31, 32, 36}) {
    for (const float bad : {65536.0f, -65536.0f, 1e30f, std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN()}) {
      at::Tensor tensor = at::full({37}, -65535.0f);
      CHECK(lorafed::all_within(tensor, 16));
      CHECK(lorafed::all_within(tensor.view({37, 1}).t(), 16));
      tensor[position] = bad;
      INFO("position " << position << " value " << bad);
      CHECK_FALSE(lorafed::all_within(tensor, 16));
      CHECK_FALSE(lorafed::all_within(tensor.to(at::kDouble), 16));    // not float32
      CHECK_FALSE(lorafed::all_within(tensor.view({37, 1}).t(), 16));  // not contiguous
      CHECK(lorafed::all_within(tensor, 128) == std::isfinite(bad));
    }
  }
  // Subnormals and zeros are small.
  CHECK(lorafed::all_within(at::full({20}, 1e-40f), 1));
  CHECK(lorafed::all_within(at::zeros({20}), 1));
  CHECK_FALSE(lorafed::all_within(at::full({20}, 2.0f), 1));
  CHECK(lorafed::all_within(at::full({20}, 1.999f), 1));
}
