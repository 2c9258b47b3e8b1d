#include "lorafed/log.hpp"

#include <string>

#include "lorafed/error.hpp"

namespace lorafed {

void configure_logging(std::string_view level) {
  const auto parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off") {
    throw ConfigError("unknown log level '" + std::string(level) +
                      "': use trace, debug, info, warn, error, critical or off");
  }
  spdlog::set_level(parsed);
  spdlog::set_pattern("%H:%M:%S.%e %^%-5l%$ %v");
}

}  // namespace lorafed
