#include "peft_targets.hpp"

#include <algorithm>

namespace lorafed::gpt {
namespace {

bool matches(const std::string& name, const std::string& target) {
  return name == target || name.ends_with("." + target);
}

}  // namespace

std::vector<std::string> match_targets(const ConfigTable& config,
                                       const std::vector<std::string>& modules,
                                       const std::vector<std::string>& wanted,
                                       const std::string& hint) {
  if (wanted.empty()) throw_config_error(config, "targets", "must name at least one module");
  for (const std::string& target : wanted) {
    if (std::none_of(modules.begin(), modules.end(),
                     [&](const std::string& name) { return matches(name, target); })) {
      throw_config_error(config, "targets", "names no module: '" + target + "' (" + hint + ")");
    }
  }
  std::vector<std::string> targets;
  for (const std::string& name : modules) {
    if (std::any_of(wanted.begin(), wanted.end(),
                    [&](const std::string& target) { return matches(name, target); }))
      targets.push_back(name);
  }
  return targets;
}

}  // namespace lorafed::gpt
