#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

#include "lorafed/export.hpp"

namespace lorafed {

// Plugins log with spdlog's default logger (spdlog::info, ...), which the
// host configures; this sets its format and level ("trace" ... "off").
LORAFED_API void configure_logging(std::string_view level);

}  // namespace lorafed
