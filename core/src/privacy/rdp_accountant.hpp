#pragma once

#include <span>
#include <vector>

namespace lorafed {

// Rényi differential privacy of the sampled Gaussian mechanism, composed
// over rounds, and its conversion to (ε, δ) (docs/algorithms.md
// §Differential privacy). Orders are integers, where the RDP has a closed
// form (Mironov, Talwar and Zhang 2019, §3.3).
class RdpAccountant {
 public:
  RdpAccountant();

  // One release of the Gaussian mechanism with noise multiplier `z`
  // (standard deviation over sensitivity) on a sample drawn with rate `q`.
  void add(double q, double z);

  // The smallest ε over the orders for which the composition so far is
  // (ε, δ)-DP (Balle et al. 2020, Theorem 21); 0 before any release.
  double epsilon(double delta) const;

  static std::span<const double> orders();
  // The accumulated RDP per order, for checkpoints, and back (sizes must match).
  const std::vector<double>& rdp() const { return rdp_; }
  void restore(std::vector<double> rdp);

 private:
  std::vector<double> rdp_;
};

// RDP at integer order `alpha` ≥ 2 of one sampled Gaussian release.
double sampled_gaussian_rdp(double q, double z, int alpha);

// ε of a composition with RDP `rdp` at `orders`, for δ.
double rdp_to_epsilon(std::span<const double> orders, std::span<const double> rdp, double delta);

}  // namespace lorafed
