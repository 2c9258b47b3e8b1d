#include <ATen/Parallel.h>
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <iterator>
#include <thread>

#include "src/idle_threads.hpp"

namespace {

std::ptrdiff_t thread_count() {
  const std::filesystem::directory_iterator tasks("/proc/self/task");
  return std::distance(begin(tasks), end(tasks));
}

// The sum of 0..n-1 (exact in doubles), over the intra-op threads.
double parallel_sum(std::int64_t n) {
  return at::arange(n, at::kDouble).sum().item<double>();
}

}  // namespace

TEST_CASE(
    "the server's idle OpenMP threads end when released, and start again with the same numbers",
    "[threads]") {
  const int threads_before = at::get_num_threads();
  at::set_num_threads(2);
  constexpr std::int64_t kN = 1 << 22;  // large enough for ATen to split over two threads
  const double expected = static_cast<double>(kN) * (kN - 1) / 2;
  REQUIRE(parallel_sum(kN) == expected);
  const std::ptrdiff_t with_pool = thread_count();

  lorafed::release_idle_parallel_threads();
  // The pool's threads leave on their own after being told to.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (thread_count() >= with_pool && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CHECK(thread_count() < with_pool);

  CHECK(parallel_sum(kN) == expected);  // the next region starts its threads anew
  CHECK(thread_count() == with_pool);
  at::set_num_threads(threads_before);
}
