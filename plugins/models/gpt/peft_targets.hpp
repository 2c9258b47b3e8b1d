#pragma once
// PEFT's rule for target_modules: a target names a module whose name is the
// target or ends with "." + target ("q_proj", "self_attn.q_proj",
// "model.layers.0.self_attn.q_proj").

#include <string>
#include <vector>

#include "lorafed/config.hpp"

namespace lorafed::gpt {

// The modules (in the model's order) that `wanted` names. Throws ConfigError
// for `config`'s "targets" when `wanted` is empty or a target names no
// module; `hint` says what the model's module names look like.
std::vector<std::string> match_targets(const ConfigTable& config,
                                       const std::vector<std::string>& modules,
                                       const std::vector<std::string>& wanted,
                                       const std::string& hint);

}  // namespace lorafed::gpt
