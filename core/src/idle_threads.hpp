#pragma once

namespace lorafed {

// Ends the wait of the server's idle OpenMP threads (LibTorch's and the BLAS
// library's intra-op pool) instead of leaving them spinning. After a
// parallel region OpenMP keeps its threads busy-waiting for the next one
// (GNU libgomp: 300,000 spins by default, milliseconds); while the clients
// then train on the same cores (`lorafed simulate`, or client processes on
// the server's machine), those spins take cores from them. The next
// parallel region starts its threads anew (tens of microseconds each).
// Does nothing where the OpenMP runtime lacks omp_pause_resource_all
// (OpenMP 5.0) or is not loaded. Numbers do not change: a thread count
// gives the same results however its threads were started.
void release_idle_parallel_threads();

}  // namespace lorafed
