#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "lorafed/export.hpp"
#include "lorafed/named_tensors.hpp"

namespace lorafed {

// The safetensors file format (the one Hugging Face uses): an 8-byte little
// endian header length, a JSON header of {name: {dtype, shape, data_offsets}}
// plus an optional "__metadata__" string map, then the raw bytes.
struct SafetensorsFile {
  NamedTensors tensors;
  std::map<std::string, std::string> metadata;
};

// Writes atomically: to a temporary file beside `path`, then rename, so a
// reader never sees half a file. Tensors must be on the CPU; non-contiguous
// ones are written contiguously. F32, F16, BF16, F64, I64, I32, U8 supported.
LORAFED_API void save_safetensors(const std::filesystem::path& path, const NamedTensors& tensors,
                                  const std::map<std::string, std::string>& metadata = {});

// Throws FormatError naming the file and the first inconsistency (header
// past the end, overlapping or out-of-range offsets, unknown dtype, ...).
LORAFED_API SafetensorsFile load_safetensors(const std::filesystem::path& path);

}  // namespace lorafed
