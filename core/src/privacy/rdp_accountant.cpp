#include "src/privacy/rdp_accountant.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "lorafed/error.hpp"

namespace lorafed {
namespace {

constexpr auto kOrders = [] {
  std::array<double, 75> orders{};
  std::size_t i = 0;
  for (int alpha = 2; alpha <= 64; ++alpha) orders[i++] = alpha;
  for (int alpha : {72, 80, 96, 128, 160, 192, 256, 384, 512, 768, 1024, 2048}) orders[i++] = alpha;
  return orders;
}();

double log_add(double a, double b) {
  if (a == -std::numeric_limits<double>::infinity()) return b;
  if (b == -std::numeric_limits<double>::infinity()) return a;
  const double high = std::max(a, b);
  return high + std::log1p(std::exp(std::min(a, b) - high));
}

}  // namespace

// A_α = Σ_k C(α,k) (1−q)^(α−k) q^k exp((k² − k) / (2z²)), in logs;
// RDP(α) = log A_α / (α − 1).
double sampled_gaussian_rdp(double q, double z, int alpha) {
  if (!(q >= 0 && q <= 1) || !(z > 0) || alpha < 2) {
    throw Error("sampled Gaussian RDP needs 0 ≤ q ≤ 1, z > 0 and an order ≥ 2");
  }
  if (q == 0) return 0;
  const double two_z2 = 2 * z * z;
  if (q == 1) return alpha / two_z2;
  const double log_q = std::log(q);
  const double log_1mq = std::log1p(-q);
  double log_a = -std::numeric_limits<double>::infinity();
  for (int k = 0; k <= alpha; ++k) {
    const double log_binomial =
        std::lgamma(alpha + 1.0) - std::lgamma(k + 1.0) - std::lgamma(alpha - k + 1.0);
    const double kd = k;
    log_a = log_add(log_a,
                    log_binomial + (alpha - kd) * log_1mq + kd * log_q + (kd * kd - kd) / two_z2);
  }
  return log_a / (alpha - 1);
}

double rdp_to_epsilon(std::span<const double> orders, std::span<const double> rdp, double delta) {
  if (orders.size() != rdp.size()) throw Error("RDP values and orders differ in number");
  double best = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < orders.size(); ++i) {
    const double alpha = orders[i];
    const double epsilon =
        rdp[i] + std::log1p(-1 / alpha) - (std::log(delta) + std::log(alpha)) / (alpha - 1);
    best = std::min(best, epsilon);
  }
  return std::max(best, 0.0);
}

RdpAccountant::RdpAccountant() : rdp_(kOrders.size(), 0.0) {}

std::span<const double> RdpAccountant::orders() {
  return kOrders;
}

void RdpAccountant::add(double q, double z) {
  for (std::size_t i = 0; i < kOrders.size(); ++i) {
    rdp_[i] += sampled_gaussian_rdp(q, z, static_cast<int>(kOrders[i]));
  }
}

double RdpAccountant::epsilon(double delta) const {
  if (std::all_of(rdp_.begin(), rdp_.end(), [](double v) { return v == 0; })) return 0;
  return rdp_to_epsilon(kOrders, rdp_, delta);
}

void RdpAccountant::restore(std::vector<double> rdp) {
  if (rdp.size() != kOrders.size()) {
    throw FormatError("privacy accountant state has " + std::to_string(rdp.size()) +
                      " orders, expected " + std::to_string(kOrders.size()));
  }
  for (double value : rdp) {
    if (!std::isfinite(value) || value < 0)
      throw FormatError("privacy accountant state is invalid");
  }
  rdp_ = std::move(rdp);
}

}  // namespace lorafed
