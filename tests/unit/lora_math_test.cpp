#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include "lorafed/lora_math.hpp"
#include "lorafed/truncated_global.hpp"
#include "lorafed/truncated_svd.hpp"
#include "unit/strategy_fixture.hpp"

using namespace lorafed;

namespace {
// A matrix with singular values j^(-decay), j = 1..n.
at::Tensor decaying(std::int64_t rows, std::int64_t cols, double decay) {
  auto [u, s, vh] = at::linalg_svd(at::randn({rows, cols}), false);
  return at::matmul(u * at::pow(at::arange(1, s.size(0) + 1).to(at::kFloat), -decay), vh);
}
}  // namespace

TEST_CASE("exact truncated SVD gives the best rank-k approximation", "[lora_math]") {
  at::manual_seed(1);
  const at::Tensor m = at::randn({30, 20});
  const TruncatedSvd svd = truncated_svd(m, 5);
  CHECK(svd.u.sizes() == at::IntArrayRef({30, 5}));
  CHECK(svd.v.sizes() == at::IntArrayRef({20, 5}));
  CHECK(at::allclose(svd.reconstruct(), lorafed::test::reference_truncation(m, 5), 1e-4, 1e-4));
  CHECK(truncated_svd(m, 50).s.size(0) == 20);  // clipped to min(rows, cols)
}

TEST_CASE("randomized truncated SVD is within 1% of the exact truncation error", "[lora_math]") {
  at::manual_seed(2);
  for (double decay : {0.5, 1.0, 2.0}) {
    const at::Tensor m = decaying(300, 200, decay);
    for (std::int64_t rank : {4, 16, 32}) {
      INFO("decay " << decay << ", rank " << rank);
      const double exact = (m - truncated_svd(m, rank).reconstruct()).norm().item<double>();
      const double randomized =
          (m - truncated_svd(m, rank, SvdMethod::kRandomized, {10, 2, 7}).reconstruct())
              .norm()
              .item<double>();
      CHECK(randomized <= 1.01 * exact);
    }
  }
}

TEST_CASE("balanced factors reproduce the truncation at the given scale", "[lora_math]") {
  at::manual_seed(3);
  const at::Tensor m = at::randn({10, 8});
  const TruncatedSvd svd = truncated_svd(m, 4);
  const LoraFactors f = balanced_factors(svd, 4, 0.5, 1);
  CHECK(at::allclose(0.5 * at::matmul(f.b, f.a), svd.reconstruct(), 1e-5, 1e-5));
  CHECK(at::allclose(at::matmul(f.b.t(), f.b), at::matmul(f.a, f.a.t()), 1e-4,
                     1e-4));  // Bᵀ B = A Aᵀ = Σ / s
}

TEST_CASE("directions with no singular mass are freshly initialised, not dead", "[lora_math]") {
  const at::Tensor rank_two = at::matmul(at::randn({10, 2}), at::randn({2, 8}));
  const LoraFactors f = balanced_factors(truncated_svd(rank_two, 5), 5, 1.0, 4);
  CHECK(at::allclose(at::matmul(f.b, f.a), rank_two, 1e-4, 1e-4));
  for (std::int64_t j = 2; j < 5; ++j) {
    CHECK(f.b.select(1, j).abs().max().item<float>() == 0.0f);  // B column zero
    CHECK(f.a[j].abs().min().item<float>() > 0.0f);             // A row initialised
    CHECK(f.a[j].abs().max().item<float>() <= 1.0f / std::sqrt(8.0f));
  }
  const LoraFactors zero = balanced_factors(truncated_svd(at::zeros({6, 4}), 3), 3, 2.0, 4);
  CHECK(zero.b.abs().max().item<float>() == 0.0f);
  CHECK(zero.a.abs().min().item<float>() > 0.0f);
}

TEST_CASE("the stacked product is the weighted sum of products", "[lora_math]") {
  at::manual_seed(5);
  const LoraFactors f1{at::randn({2, 7}), at::randn({6, 2})};
  const LoraFactors f2{at::randn({5, 7}), at::randn({6, 5})};
  const std::vector<WeightedFactors> terms = {{&f1, 0.3}, {&f2, 1.7}};
  const at::Tensor expected = 0.3 * at::matmul(f1.b, f1.a) + 1.7 * at::matmul(f2.b, f2.a);
  CHECK(at::allclose(stacked_product(terms), expected, 1e-5, 1e-5));
}

TEST_CASE("weights normalise over the clients given, zeros become uniform", "[lora_math]") {
  CHECK(normalise_weights(std::vector<double>{1, 3}) == std::vector<double>{0.25, 0.75});
  CHECK(normalise_weights(std::vector<double>{0, 0}) == std::vector<double>{0.5, 0.5});
  CHECK_THROWS(normalise_weights(std::vector<double>{1, -1}));
  CHECK_THROWS(normalise_weights(std::vector<double>{NAN}));
}

TEST_CASE("the truncated global computes truncation errors from singular values", "[lora_math]") {
  at::manual_seed(6);
  const ModelSpec spec{"m", {{"x", 9, 7}}, {}};
  TruncatedGlobal global(spec, {});
  const at::Tensor w = at::randn({7, 9});
  global.set_weights({{"x", w}});
  global.truncate(5, 0);
  for (std::int64_t r : {1, 3, 5}) {
    const double by_hand =
        (w - lorafed::test::reference_truncation(w, r)).square().sum().item<double>();
    CHECK(global.truncation_error(r) == Approx(by_hand).epsilon(1e-4));
  }
}
