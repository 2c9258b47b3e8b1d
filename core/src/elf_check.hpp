#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace lorafed {

// What makes `path` unsafe to hand to dlopen, or nullopt when its ELF
// headers are consistent with its size: the ELF magic, a 64-bit class in
// this machine's byte order, program and section header tables inside the
// file, and every segment's bytes inside the file. The dynamic loader maps
// segments without checking them against the file's size, so a truncated
// library faults (SIGBUS) on first touch instead of failing to load.
std::optional<std::string> elf_file_defect(const std::filesystem::path& path);

}  // namespace lorafed
