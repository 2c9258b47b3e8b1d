#pragma once

// Copies of a built plugin cut short, for the plugin registry's checks of a
// file before it is loaded (tests/unit/plugin_registry_test.cpp,
// tests/integration/plugin_files_test.cpp).
#include <elf.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace lorafed::test {

// Where the bytes the dynamic loader maps end: the largest p_offset +
// p_filesz over the PT_LOAD segments. Read here independently of the
// registry's own checks.
inline std::uint64_t loadable_end(const std::filesystem::path& library) {
  std::ifstream in(library, std::ios::binary);
  Elf64_Ehdr header{};
  in.read(reinterpret_cast<char*>(&header), sizeof(header));
  std::uint64_t end = 0;
  for (std::uint16_t index = 0; in && index < header.e_phnum; ++index) {
    Elf64_Phdr segment{};
    in.seekg(static_cast<std::streamoff>(header.e_phoff + index * sizeof(Elf64_Phdr)));
    in.read(reinterpret_cast<char*>(&segment), sizeof(segment));
    if (segment.p_type == PT_LOAD) end = std::max(end, segment.p_offset + segment.p_filesz);
  }
  if (!in || end == 0) throw std::runtime_error("no loadable segments in " + library.string());
  return end;
}

// `library` copied into `folder` under its own name and cut to `size` bytes.
inline std::filesystem::path truncated_copy(const std::filesystem::path& library,
                                            const std::filesystem::path& folder,
                                            std::uint64_t size) {
  std::filesystem::create_directories(folder);
  const auto copy = folder / library.filename();
  std::filesystem::copy_file(library, copy, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::resize_file(copy, size);
  return copy;
}

}  // namespace lorafed::test
