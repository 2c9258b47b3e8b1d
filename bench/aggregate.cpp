// bench/aggregate: the FedHL server step (configure_fit + aggregate_fit) for
// 10, 100 and 1000 clients with ranks drawn from {4, 8, 16, 32, 64}, on
// layers of 4096 × 4096, against a reference that computes one full SVD per
// client and layer (what a per-client truncation costs without FedHL's
// nested truncations). Each configuration runs in a fresh process so its
// peak memory is its own.
//
//   bench_aggregate [--layers 8] [--dim 4096] [--clients 10,100,1000] [--svd exact|randomized]
//                   [--threads N]
//
// --threads sets the LibTorch threads, as `[server] threads` does for a
// server (default: one per core).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/arguments.hpp"
#include "lorafed/config.hpp"
#include "lorafed/truncated_svd.hpp"
#include "src/plugin_registry.hpp"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}
double peak_gib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / (1024.0 * 1024.0);
}

struct Options {
  std::int64_t layers = 8;
  std::int64_t dim = 4096;
  std::vector<std::int64_t> clients = {10, 100, 1000};
  std::string svd = "exact";
  int threads = 0;  // 0: LibTorch's default, one per core
};

// One configuration: prints "clients step_s peak_gib sum_of_ranks".
int run_one(const Options& options, std::int64_t clients) {
  using namespace lorafed;
  const PluginRegistry registry({LORAFED_BUILD_PLUGIN_DIR});
  const auto plugin = registry.strategy("fedhl");
  auto strategy = keep_library_alive(plugin.factory->create_strategy(ConfigTable::parse_string(
                                         "svd = \"" + options.svd + "\"", "bench")),
                                     plugin.factory);
  ModelSpec spec{"bench", {}, {}};
  for (std::int64_t l = 0; l < options.layers; ++l)
    spec.targets.push_back({"layer" + std::to_string(l), options.dim, options.dim});
  strategy->initialize(StrategyContext{spec, 16.0, 1});
  // A W_t of full rank with a decaying spectrum, as after some rounds.
  NamedTensors state;
  for (const auto& layer : spec.targets) {
    state[layer.name + ".global"] = at::randn({options.dim, options.dim}) * (1.0 / options.dim);
  }
  strategy->load_state(state);
  std::mt19937_64 rng(7);
  const std::int64_t rank_set[] = {4, 8, 16, 32, 64};
  std::vector<ClientInfo> infos;
  std::vector<FitResult> results;
  std::int64_t rank_sum = 0;
  for (std::int64_t i = 0; i < clients; ++i) {
    const std::int64_t rank = rank_set[rng() % 5];
    rank_sum += rank;
    infos.push_back({"client-" + std::to_string(i), rank, 100, "bench"});
    Adapter adapter;
    adapter.alpha = 16;
    for (const auto& layer : spec.targets) {
      adapter.layers[layer.name] = {at::randn({rank, options.dim}) * 0.01,
                                    at::randn({options.dim, rank}) * 0.01};
    }
    results.push_back({infos.back().id, std::move(adapter), 100, {}});
  }
  const auto start = Clock::now();
  strategy->configure_fit(1, infos);
  strategy->aggregate_fit(1, results, {});
  const double step = seconds(start);
  std::printf("%lld %.3f %.2f %lld\n", static_cast<long long>(clients), step, peak_gib(),
              static_cast<long long>(rank_sum));
  return 0;
}

// Seconds for one full SVD of a dim × dim matrix (the reference's unit cost).
double full_svd_seconds(std::int64_t dim) {
  const at::Tensor m = at::randn({dim, dim});
  const auto start = Clock::now();
  (void)at::linalg_svd(m, false);
  return seconds(start);
}

std::string child_output(const std::vector<std::string>& args) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return "";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  std::vector<char*> argv;
  std::vector<std::string> copy = args;
  for (auto& arg : copy) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  std::string output;
  char buffer[256];
  for (ssize_t n; (n = read(pipe_fds[0], buffer, sizeof buffer)) > 0;)
    output.append(buffer, static_cast<std::size_t>(n));
  close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return output;
}

}  // namespace

int main(int argc, char** argv) {
  lorafed::bench::check_arguments(
      argc, argv,
      "bench_aggregate [--layers 8] [--dim 4096] [--clients 10,100,1000] [--svd exact|randomized] "
      "[--threads N]");
  Options options;
  std::int64_t only = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    const std::string value = argv[i + 1];
    if (key == "--layers")
      options.layers = std::stoll(value);
    else if (key == "--dim")
      options.dim = std::stoll(value);
    else if (key == "--svd")
      options.svd = value;
    else if (key == "--threads")
      options.threads = std::stoi(value);
    else if (key == "--one")
      only = std::stoll(value);
    else if (key == "--clients") {
      options.clients.clear();
      std::stringstream list(value);
      for (std::string item; std::getline(list, item, ',');)
        options.clients.push_back(std::stoll(item));
    } else {
      std::fprintf(stderr, "unknown option %s\n", key.c_str());
      return 2;
    }
  }
  if (options.threads > 0) at::set_num_threads(options.threads);
  if (only > 0) return run_one(options, only);

  std::printf(
      "FedHL server step: %lld layers of %lld x %lld, ranks uniform over {4,8,16,32,64}, svd = %s, "
      "%d threads\n",
      static_cast<long long>(options.layers), static_cast<long long>(options.dim),
      static_cast<long long>(options.dim), options.svd.c_str(), at::get_num_threads());
  const double svd_unit = full_svd_seconds(options.dim);
  std::printf("one full SVD of %lld x %lld: %.2f s\n\n", static_cast<long long>(options.dim),
              static_cast<long long>(options.dim), svd_unit);
  std::printf(
      "| clients | sum of ranks | FedHL step (s) | peak memory (GiB) | SVD-per-client reference "
      "(s) | speed-up |\n");
  std::printf("| ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (std::int64_t clients : options.clients) {
    const std::string row =
        child_output({"bench_aggregate", "--layers", std::to_string(options.layers), "--dim",
                      std::to_string(options.dim), "--svd", options.svd, "--threads",
                      std::to_string(at::get_num_threads()), "--one", std::to_string(clients)});
    long long n = 0, rank_sum = 0;
    double step = 0, peak = 0;
    if (std::sscanf(row.c_str(), "%lld %lf %lf %lld", &n, &step, &peak, &rank_sum) != 4) {
      std::printf("| %lld | run failed | | | | |\n", static_cast<long long>(clients));
      continue;
    }
    // The reference: one full SVD per client per layer (its GEMMs left out, in its favour).
    const double reference = svd_unit * static_cast<double>(clients * options.layers);
    std::printf("| %lld | %lld | %.2f | %.2f | %.1f (%lld SVDs x %.2f s) | %.0fx |\n", n, rank_sum,
                step, peak, reference, static_cast<long long>(clients * options.layers), svd_unit,
                reference / step);
    std::fflush(stdout);
  }
  return 0;
}
