#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace lorafed {

// One federation of a sweep: its place in the grid and its whole
// configuration, ready to be written out as the run's config.toml.
struct SweepPoint {
  std::string name;  // the run directory's name: labels joined, seed last
  std::vector<std::pair<std::string, std::string>> labels;  // axis → value label (no seed)
  std::int64_t seed = 0;
  std::string group;        // labels joined: the points a table row averages over seeds
  std::string config_toml;  // the base configuration with this point's values set
};

struct SweepPlan {
  std::vector<std::string> axes;  // in the order they vary, seed excluded
  std::vector<std::int64_t> seeds;
  std::vector<SweepPoint> points;  // grid order: the first axis slowest, seeds fastest
  std::filesystem::path output_dir;
  std::string
      metric;  // the tables' headline metric ([sweep] metric); empty: accuracy, or the first
};

// Reads a federation configuration that has a [sweep] table
// (docs/outputs.md §Sweeps) and expands it into its grid of points.
// `overrides` ("section.key=value") apply to the base before the grid does;
// `output_dir`, when not empty, replaces the base's [federation] output_dir
// as the folder the run directories go in.
// Throws ConfigError for a malformed [sweep] table or an empty grid.
SweepPlan plan_sweep(const std::filesystem::path& config_path,
                     const std::vector<std::string>& overrides,
                     const std::filesystem::path& output_dir = {});

}  // namespace lorafed
