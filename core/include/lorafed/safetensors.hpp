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

// As load_safetensors, checked alike, but the tensors view a private
// copy-on-write mapping of the file instead of copies of it: pages are read
// when touched, and the mapping lives as long as any tensor views it. A
// tensor whose bytes are not aligned to its element size is copied. For
// checkpoints that are large and mostly used as stored; the file must not
// shrink while mapped (reading a page past its end raises SIGBUS).
LORAFED_API SafetensorsFile map_safetensors(const std::filesystem::path& path);

}  // namespace lorafed
