// The RDP accountant (docs/algorithms.md §Differential privacy) against
// values computed here by other means: the closed form without sampling,
// numerical integration of the Rényi divergence for the sampled Gaussian
// mechanism, and the exact privacy profile of the Gaussian mechanism.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <vector>

#include "src/privacy/rdp_accountant.hpp"

using namespace lorafed;

namespace {

double log_add(double a, double b) {
  const double high = std::max(a, b);
  return high + std::log(std::exp(a - high) + std::exp(b - high));
}

// D_α(P ‖ Q) = log ∫ P^α Q^(1−α) / (α − 1) for the two one-dimensional
// densities the sampled Gaussian mechanism compares: μ0 = N(0, z²) and the
// mixture μ = (1 − q) μ0 + q N(1, z²). Simpson's rule on a grid wide enough
// to hold both densities' mass under the α-th power, in logs.
double numerical_divergence(double q, double z, int alpha, bool mixture_first) {
  const double low = -30 * z;
  const double high = alpha + 30 * z;
  const int intervals = 400000;  // even
  const double h = (high - low) / intervals;
  auto log_mu0 = [&](double x) {
    return -x * x / (2 * z * z) - std::log(z * std::sqrt(2 * std::numbers::pi));
  };
  auto log_mu = [&](double x) {
    const double log_mu1 =
        -(x - 1) * (x - 1) / (2 * z * z) - std::log(z * std::sqrt(2 * std::numbers::pi));
    return log_add(std::log1p(-q) + log_mu0(x), std::log(q) + log_mu1);
  };
  std::vector<double> log_f(intervals + 1);
  double top = -std::numeric_limits<double>::infinity();
  for (int i = 0; i <= intervals; ++i) {
    const double x = low + i * h;
    const double p = mixture_first ? log_mu(x) : log_mu0(x);
    const double r = mixture_first ? log_mu0(x) : log_mu(x);
    log_f[i] = alpha * p + (1 - alpha) * r;
    top = std::max(top, log_f[i]);
  }
  double sum = 0;
  for (int i = 0; i <= intervals; ++i) {
    const double weight = (i == 0 || i == intervals) ? 1 : (i % 2 == 1 ? 4 : 2);
    sum += weight * std::exp(log_f[i] - top);
  }
  return (top + std::log(sum * h / 3)) / (alpha - 1);
}

double normal_cdf(double x) {
  return 0.5 * std::erfc(-x / std::sqrt(2.0));
}

// The exact ε of the Gaussian mechanism with μ = sensitivity / σ at δ
// (Balle and Wang 2018, Theorem 8), by bisection on the privacy profile
// δ(ε) = Φ(−ε/μ + μ/2) − e^ε Φ(−ε/μ − μ/2), which decreases in ε.
double exact_gaussian_epsilon(double mu, double delta) {
  auto profile = [&](double epsilon) {
    return normal_cdf(-epsilon / mu + mu / 2) -
           std::exp(epsilon) * normal_cdf(-epsilon / mu - mu / 2);
  };
  double low = 0, high = 500;
  for (int i = 0; i < 200; ++i) {
    const double middle = (low + high) / 2;
    (profile(middle) > delta ? low : high) = middle;
  }
  return high;
}

}  // namespace

TEST_CASE("without sampling, the Gaussian mechanism's RDP is α / (2z²)", "[privacy]") {
  for (double z : {0.5, 1.0, 3.7}) {
    for (int alpha : {2, 7, 64, 1024}) {
      CHECK(sampled_gaussian_rdp(1.0, z, alpha) == Approx(alpha / (2 * z * z)).epsilon(1e-12));
    }
  }
  // Composition adds: T releases are T times one.
  RdpAccountant accountant;
  for (int round = 0; round < 5; ++round) accountant.add(1.0, 2.0);
  const auto orders = RdpAccountant::orders();
  for (std::size_t i = 0; i < orders.size(); ++i) {
    CHECK(accountant.rdp()[i] == Approx(5 * orders[i] / 8).epsilon(1e-12));
  }
  CHECK(sampled_gaussian_rdp(0.0, 1.0, 8) == 0.0);
}

TEST_CASE("the sampled Gaussian's RDP equals the Rényi divergence integrated numerically",
          "[privacy]") {
  struct Case {
    double q;
    double z;
    int alpha;
  };
  for (const Case& c : {Case{0.01, 1.0, 2}, Case{0.01, 1.0, 16}, Case{0.1, 0.8, 8},
                        Case{0.1, 1.5, 32}, Case{0.5, 4.0, 3}, Case{0.3, 2.0, 20}}) {
    INFO("q " << c.q << ", z " << c.z << ", α " << c.alpha);
    const double accountant = sampled_gaussian_rdp(c.q, c.z, c.alpha);
    const double forward = numerical_divergence(c.q, c.z, c.alpha, true);
    const double backward = numerical_divergence(c.q, c.z, c.alpha, false);
    CHECK(accountant == Approx(forward).epsilon(1e-6));
    // The direction the closed form computes is the larger one, so it is
    // the mechanism's RDP (Mironov, Talwar and Zhang 2019, Theorem 5).
    CHECK(forward >= backward);
    // Sampling amplifies: less than the unsampled α/(2z²).
    CHECK(accountant < c.alpha / (2 * c.z * c.z));
  }
}

TEST_CASE("ε from RDP bounds the Gaussian mechanism's exact ε, within 20% up to ε = 40",
          "[privacy]") {
  // T unsampled releases with multiplier z compose to one Gaussian with
  // μ = √T / z, whose exact ε is known.
  for (double z : {0.8, 1.0, 2.0, 5.0}) {
    for (int releases : {1, 10, 100}) {
      for (double delta : {1e-5, 1e-3}) {
        RdpAccountant accountant;
        for (int i = 0; i < releases; ++i) accountant.add(1.0, z);
        const double exact = exact_gaussian_epsilon(std::sqrt(releases) / z, delta);
        const double bound = accountant.epsilon(delta);
        INFO("z " << z << ", T " << releases << ", δ " << delta << ": exact " << exact << ", RDP "
                  << bound);
        CHECK(bound >= exact);
        // Integer orders only: past ε ≈ 40 the best order would lie below
        // 2, and the bound loosens (to 1.4 × at z 0.8, T 100).
        if (exact <= 40) CHECK(bound <= 1.2 * exact);
      }
    }
  }
}

TEST_CASE("ε grows with rounds and the sample rate and shrinks with noise", "[privacy]") {
  auto epsilon = [](double q, double z, int rounds) {
    RdpAccountant accountant;
    for (int i = 0; i < rounds; ++i) accountant.add(q, z);
    return accountant.epsilon(1e-5);
  };
  CHECK(RdpAccountant().epsilon(1e-5) == 0.0);
  CHECK(epsilon(0.1, 1.0, 20) < epsilon(0.1, 1.0, 40));
  CHECK(epsilon(0.1, 1.0, 20) < epsilon(0.2, 1.0, 20));
  CHECK(epsilon(0.1, 2.0, 20) < epsilon(0.1, 1.0, 20));
  CHECK(epsilon(0.1, 1.0, 20) < epsilon(1.0, 1.0, 20));
}

TEST_CASE("the accountant's state is restored, and damaged state is refused", "[privacy]") {
  RdpAccountant accountant;
  accountant.add(0.1, 1.1);
  RdpAccountant restored;
  restored.restore(accountant.rdp());
  CHECK(restored.epsilon(1e-5) == accountant.epsilon(1e-5));
  CHECK_THROWS(restored.restore({1.0, 2.0}));
  std::vector<double> bad = accountant.rdp();
  bad[3] = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS(restored.restore(bad));
}
