#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>

#include "lorafed/export.hpp"

namespace lorafed::data {

// Reads an IDX file (the MNIST family's format), gzip-compressed or not.
// Returns a uint8 tensor of the file's shape. Throws FormatError naming the
// file on a bad magic number, a non-uint8 type or a short file.
LORAFED_API at::Tensor read_idx(const std::filesystem::path& path);

}  // namespace lorafed::data
