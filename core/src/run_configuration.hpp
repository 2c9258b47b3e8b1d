#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>

#include "src/federation_config.hpp"

namespace lorafed {

// <out>/resolved-config.toml: the configuration a run was made with, --set included,
// so that any run can be reproduced from its folder (docs/outputs.md).
void write_run_configuration(const FederationConfig& config,
                             const std::filesystem::path& output_dir);

// A resume must be made with the configuration of the run it continues, but
// for what may change: federation.rounds (rounds to add), federation.log_level
// and federation.output_dir. Throws ConfigError naming every other key that
// differs, with both values; a run folder without resolved-config.toml (made before
// runs recorded it) is not checked.
void check_resume_configuration(const FederationConfig& config,
                                const std::filesystem::path& output_dir);

// The settings that make a run what it is, for summary.json: the strategy
// and model tables, every client's rank, the seed, clients and rounds.
nlohmann::json run_settings(const FederationConfig& config);

}  // namespace lorafed
