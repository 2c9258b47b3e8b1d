#include "src/allocator_tuning.hpp"

#include <malloc.h>

namespace lorafed {

void keep_freed_memory_for_reuse() {
  // Both are hints: a C library that is not glibc's ignores them (returns 0).
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

}  // namespace lorafed
