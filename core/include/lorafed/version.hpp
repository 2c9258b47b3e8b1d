#pragma once

#include <cstdint>

namespace lorafed {

// Bumped whenever a public SDK header changes in a way that breaks plugins
// built against an earlier one. The plugin registry refuses a plugin whose
// info record carries another value.
inline constexpr std::uint32_t kAbiVersion = 6;

// The wire protocol version carried in every Envelope (docs/protocol.md).
inline constexpr std::uint32_t kProtocolVersion = 1;

inline constexpr const char* kFrameworkVersion = "0.1.0";

}  // namespace lorafed
