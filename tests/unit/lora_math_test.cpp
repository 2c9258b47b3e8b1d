#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <cmath>

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

namespace {

// W = scale · U diag(σ) Vᵀ with σ_j = 10^(−j/2), j = 0…cols−1, U and V
// orthonormal (QR in double), rounded to float32 as a server holds it. Its
// tails are known in closed form: Σ_{j≥r} σ_j² = scale² · 10^(−r) (1 − 10^(r−cols)) / 0.9.
struct KnownSpectrum {
  at::Tensor w;
  double scale;
  std::int64_t cols;
  double tail(std::int64_t rank) const {
    return scale * scale * std::pow(10.0, -static_cast<double>(rank)) *
           (1.0 - std::pow(10.0, static_cast<double>(rank - cols))) / 0.9;
  }
};

KnownSpectrum known_spectrum(std::int64_t rows, std::int64_t cols, double scale) {
  const auto options = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor u = std::get<0>(at::linalg_qr(at::randn({rows, cols}, options)));
  const at::Tensor v = std::get<0>(at::linalg_qr(at::randn({cols, cols}, options)));
  const at::Tensor sigma = at::pow(10.0, -at::arange(cols, options) / 2.0);
  return {(scale * at::matmul(u * sigma, v.t())).to(at::kFloat), scale, cols};
}

}  // namespace

TEST_CASE("truncation errors keep their precision when they are small next to ||W||²",
          "[lora_math][truncation_error]") {
  at::manual_seed(12);
  // ||W||² ≈ 1.1e4 while the tail at rank 6 is ≈ 1.1e−2: ||W||² − Σ σ_j² in
  // float32 lost it (relative errors 1e−5 at rank 2, 1e−3 at 4, 0.14 at 6).
  // The float32 rounding of W itself moves these tails by < 1e−6; deeper
  // tails (rank ≥ 8) move by more, whatever computes them.
  const KnownSpectrum known = known_spectrum(64, 48, 100.0);
  const ModelSpec spec{"m", {{"x", 48, 64}}, {}};
  SECTION("exact SVD") {
    TruncatedGlobal global(spec, {});
    global.set_weights({{"x", known.w}});
    global.truncate(6, 0);
    for (std::int64_t r : {1, 2, 4, 6}) {
      const double relative = std::abs(global.truncation_error(r) / known.tail(r) - 1);
      INFO("rank " << r << ": relative error " << relative);
      CHECK(relative < 1e-5);
    }
  }
  SECTION("randomized SVD: the error of the truncation it sends") {
    TruncatedGlobal global(spec, {SvdMethod::kRandomized, {}});
    global.set_weights({{"x", known.w}});
    global.truncate(6, 3);
    // Randomized factors are near-optimal on a spectrum this steep, so the
    // error of what they send is the best truncation's to the same precision.
    for (std::int64_t r : {1, 2, 4, 6}) {
      const double relative = std::abs(global.truncation_error(r) / known.tail(r) - 1);
      INFO("rank " << r << ": relative error " << relative);
      CHECK(relative < 1e-5);
    }
  }
}
