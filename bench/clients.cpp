// bench/clients: many virtual clients in one `lorafed simulate`. For each
// client count, runs the example configuration in a child process (IID
// split, a share of the clients sampled per round) and reports its peak
// resident memory, its start-up and the framework's share of a round.
//
//   bench_clients [--config examples/quickstart.toml] [--clients 10,1000,10000]
//                 [--sampled 0.1] [--rounds 5] [--threads 2] [--lorafed PATH]
//
// Start-up is the wall time the child spent outside its rounds: loading
// the dataset and the base, building the clients, their registration and
// the PEFT export at the end. A round's framework overhead is the time
// between the ends of two rounds (so recording and checkpointing count)
// less the server's aggregation and evaluation and less the least time
// its training could take on the worker pool: the larger of the longest
// client's fit_s and the sum of fit_s over the workers.
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bench/arguments.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;

struct Options {
  std::string config = "examples/quickstart.toml";
  std::vector<long long> clients = {10, 1000, 10000};
  double sampled = 0.1;
  int rounds = 5;
  int threads = 2;
  std::string lorafed = LORAFED_BINARY;
};

struct Run {
  bool ok = false;
  double wall_s = 0, peak_mib = 0, federation_s = 0;
  double overhead_s = 0, rounds_s = 0;  // summed over rounds 2.. (round 1 warms up)
  double accuracy = 0;
};

// Runs `argv` with its output in `log`; its wall time and peak RSS.
bool run_child(const std::vector<std::string>& args, const fs::path& log, Run& run) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& arg : copy) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const auto start = std::chrono::steady_clock::now();
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) return false;
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  run.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.peak_mib = static_cast<double>(usage.ru_maxrss) / 1024.0;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

Run measure(const Options& options, long long clients) {
  const fs::path out =
      fs::temp_directory_path() / ("lorafed-bench-clients-" + std::to_string(clients));
  fs::remove_all(out);
  fs::create_directories(out);
  // A few examples per client at 10,000 (58,000 / 10,000): the minimum follows.
  const long long per_client = 58000 / clients;
  const std::vector<std::string> args = {
      options.lorafed,
      "simulate",
      options.config,
      "--out",
      (out / "run").string(),
      "--set",
      "federation.num_clients=" + std::to_string(clients),
      "--set",
      "federation.rounds=" + std::to_string(options.rounds),
      "--set",
      "federation.fraction_fit=" + std::to_string(options.sampled),
      "--set",
      "simulation.threads=" + std::to_string(options.threads),
      "--set",
      "model.partition=\"iid\"",
      "--set",
      "model.min_client_examples=" + std::to_string(std::min(20LL, per_client))};
  Run run;
  run.ok = run_child(args, out / "log.txt", run);
  if (!run.ok) return run;
  std::ifstream summary_file(out / "run" / "summary.json");
  const nlohmann::json summary = nlohmann::json::parse(summary_file);
  run.federation_s = summary.value("elapsed_s", 0.0);
  run.accuracy = summary.value("final_accuracy", 0.0);

  std::map<int, std::vector<double>> fit_s;  // by round
  std::map<int, nlohmann::json> rounds;
  std::ifstream metrics(out / "run" / "metrics.jsonl");
  for (std::string line; std::getline(metrics, line);) {
    const nlohmann::json record = nlohmann::json::parse(line);
    const int round = record.value("round", 0);
    if (record.value("type", "") == "round") rounds[round] = record;
    if (record.value("type", "") == "client" && record.value("phase", "") == "fit" &&
        record.contains("fit_s")) {
      fit_s[round].push_back(record["fit_s"].get<double>());
    }
  }
  for (const auto& [round, record] : rounds) {
    if (round < 2 || !rounds.contains(round - 1)) continue;
    const double period =
        record.value("elapsed_s", 0.0) - rounds[round - 1].value("elapsed_s", 0.0);
    const std::vector<double>& fits = fit_s[round];
    double sum = 0, longest = 0;
    for (const double value : fits) {
      sum += value;
      longest = std::max(longest, value);
    }
    const double training = std::max(longest, sum / options.threads);
    run.rounds_s += period;
    run.overhead_s +=
        period - training - record.value("aggregate_s", 0.0) - record.value("evaluate_s", 0.0);
  }
  fs::remove_all(out);
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  const char* usage =
      "bench_clients [--config examples/quickstart.toml] [--clients 10,1000,10000] "
      "[--sampled 0.1] [--rounds 5] [--threads 2] [--lorafed PATH]";
  lorafed::bench::check_arguments(argc, argv, usage);
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--config") {
      options.config = value;
    } else if (key == "--clients") {
      options.clients.clear();
      std::stringstream list(value);
      for (std::string item; std::getline(list, item, ',');)
        options.clients.push_back(std::stoll(item));
    } else if (key == "--sampled") {
      options.sampled = std::stod(value);
    } else if (key == "--rounds") {
      options.rounds = std::stoi(value);
    } else if (key == "--threads") {
      options.threads = std::stoi(value);
    } else if (key == "--lorafed") {
      options.lorafed = value;
    } else {
      std::fprintf(stderr, "unknown option %s\nusage: %s\n", key.c_str(), usage);
      return 2;
    }
  }
  std::printf("%s, IID, %.0f%% sampled, %d rounds, %d worker threads\n\n", options.config.c_str(),
              100 * options.sampled, options.rounds, options.threads);
  std::printf(
      "| clients | peak RSS (MiB) | wall (s) | start-up (s) | federation (s) | framework overhead "
      "(rounds 2..%d) | final accuracy |\n",
      options.rounds);
  std::printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const long long clients : options.clients) {
    const Run run = measure(options, clients);
    if (!run.ok) {
      std::printf("| %lld | run failed: see %s | | | | | |\n", clients,
                  (fs::temp_directory_path() /
                   ("lorafed-bench-clients-" + std::to_string(clients)) / "log.txt")
                      .c_str());
      continue;
    }
    std::printf("| %lld | %.0f | %.1f | %.1f | %.1f | %.1f%% of %.2f s | %.2f%% |\n", clients,
                run.peak_mib, run.wall_s, run.wall_s - run.federation_s, run.federation_s,
                run.rounds_s > 0 ? 100 * run.overhead_s / run.rounds_s : 0.0, run.rounds_s,
                100 * run.accuracy);
    std::fflush(stdout);
  }
  return 0;
}
