#include "lorafed/error.hpp"

namespace lorafed {

// Out-of-line destructors anchor the type information in liblorafed.so, so
// an exception thrown in a plugin is caught by its type in the host.
Error::Error(const std::string& message) : std::runtime_error(message) {}
Error::~Error() = default;
ConfigError::~ConfigError() = default;
PluginError::~PluginError() = default;
FormatError::~FormatError() = default;

}  // namespace lorafed
