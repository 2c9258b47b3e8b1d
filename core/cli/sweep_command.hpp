#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "src/plugin_registry.hpp"

namespace lorafed::cli {

struct SweepOptions {
  std::string config;
  std::vector<std::string> overrides;
  std::string output_dir;
  std::string log_level;
  bool dry_run = false;
};

// `lorafed sweep CONFIG`: runs every point of the configuration's [sweep]
// grid with `lorafed simulate`'s machinery, one run directory per point, and
// writes the combined tables (docs/outputs.md §Sweeps). A point whose
// directory already holds a summary.json for the same config.toml is not run
// again, and one that stopped is resumed from its checkpoint, so an
// interrupted sweep continues where it stopped; a directory holding results
// of another configuration stops the sweep before anything runs (ConfigError).
// Returns 0 when every point succeeded, 1 when some failed (the others are
// still tabulated).
int sweep(const SweepOptions& options, const PluginRegistry& registry, std::ostream& out);

}  // namespace lorafed::cli
