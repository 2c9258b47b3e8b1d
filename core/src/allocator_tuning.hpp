#pragma once

namespace lorafed {

// Makes glibc keep freed memory for reuse: allocations up to 64 MiB come
// from the heap (M_MMAP_THRESHOLD) and up to 1 GiB of free heap stays mapped
// (M_TRIM_THRESHOLD). A federation receives and frees frames of up to 4 MiB
// and factors of tens of MiB every round; with glibc's defaults many of them
// land in fresh pages, and first-touch page faults cost more than receiving
// the bytes on virtual machines (docs/benchmarks.md, transport). Called once
// at the start of `lorafed` and of the benchmarks.
void keep_freed_memory_for_reuse();

}  // namespace lorafed
