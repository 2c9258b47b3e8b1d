#pragma once

#include <filesystem>
#include <functional>
#include <ostream>

#include "lorafed/export.hpp"

namespace lorafed {

// Writes `path` by writing a temporary file in the same folder and renaming
// it over `path`, so readers see the old file or the whole new one.
LORAFED_API void write_file_atomically(const std::filesystem::path& path,
                                       const std::function<void(std::ostream&)>& write);

}  // namespace lorafed
