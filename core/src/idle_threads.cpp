#include "src/idle_threads.hpp"

#include <dlfcn.h>

namespace lorafed {

void release_idle_parallel_threads() {
  // Looked up, not linked: whichever OpenMP runtime LibTorch loaded (GNU
  // libgomp on Debian, LLVM's libomp elsewhere) exports the same name, and
  // linking one ourselves could load a second runtime beside it.
  using PauseAll = int (*)(int kind);
  static const auto pause_all =
      reinterpret_cast<PauseAll>(::dlsym(RTLD_DEFAULT, "omp_pause_resource_all"));
  constexpr int kOmpPauseSoft = 1;  // omp_pause_soft: threads may be started again
  // A non-zero return (called inside a parallel region) leaves the threads as they were.
  if (pause_all != nullptr) static_cast<void>(pause_all(kOmpPauseSoft));
}

}  // namespace lorafed
