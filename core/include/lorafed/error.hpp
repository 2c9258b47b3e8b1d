#pragma once

#include <stdexcept>
#include <string>

#include "lorafed/export.hpp"

namespace lorafed {

// Base of every exception lorafed throws on purpose. The message says what
// went wrong, where, and what to do about it.
class LORAFED_API Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message);
  ~Error() override;
};

// A configuration file or value a user must fix.
class LORAFED_API ConfigError : public Error {
 public:
  using Error::Error;
  ~ConfigError() override;
};

// A plugin that cannot be found, loaded or trusted.
class LORAFED_API PluginError : public Error {
 public:
  using Error::Error;
  ~PluginError() override;
};

// A message or file whose bytes do not follow the format.
class LORAFED_API FormatError : public Error {
 public:
  using Error::Error;
  ~FormatError() override;
};

}  // namespace lorafed
