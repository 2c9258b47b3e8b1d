#pragma once

// Helpers for tests that run `lorafed` federations as processes on the
// tiny-fmnist configuration.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/process.hpp"

namespace lorafed::test {

inline const std::filesystem::path kWork = LORAFED_TEST_WORK_DIR;
inline const std::string kConfig = std::string(LORAFED_TEST_CONFIG_DIR) + "/tiny-fmnist.toml";
inline const std::map<std::string, std::string> kEnv = {
    {"LORAFED_CACHE_DIR", (kWork / "cache").string()}};

inline std::filesystem::path fresh_dir(const std::string& name) {
  const std::filesystem::path dir = kWork / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline std::vector<std::string> join(std::vector<std::string> a,
                                     const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Fast failure detection for tests over `endpoint`: a heartbeat every 0.3 s,
// lost after 1.5 s, reconnecting within a second.
inline std::vector<std::string> liveness(const std::string& endpoint) {
  return {"--set", "transport.endpoint=\"" + endpoint + "\"",
          "--set", "broker.heartbeat_interval_s=0.3",
          "--set", "broker.heartbeat_timeout_s=1.5",
          "--set", "client.reconnect_backoff_s=0.2",
          "--set", "client.reconnect_backoff_max_s=1"};
}

// `lorafed MODE tiny-fmnist.toml --out OUT EXTRA...`
inline std::vector<std::string> command(const std::string& mode, const std::filesystem::path& out,
                                        std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {LORAFED_EXECUTABLE, mode, kConfig, "--out", out.string()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

inline std::vector<nlohmann::json> read_metrics(const std::filesystem::path& out) {
  std::vector<nlohmann::json> lines;
  std::istringstream text(read_file(out / "metrics.jsonl"));
  for (std::string line; std::getline(text, line);) {
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

inline nlohmann::json read_summary(const std::filesystem::path& out) {
  return nlohmann::json::parse(read_file(out / "summary.json"));
}

// Polls every 100 ms until `done` or `limit` passed; returns `done()`.
inline bool wait_until(const std::function<bool()>& done, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return true;
}

// True once metrics.jsonl has a line for which `match` holds.
inline bool has_metrics_line(const std::filesystem::path& out,
                             const std::function<bool(const nlohmann::json&)>& match) {
  if (!std::filesystem::exists(out / "metrics.jsonl")) return false;
  for (const nlohmann::json& line : read_metrics(out)) {
    if (match(line)) return true;
  }
  return false;
}

// The round of the run's last checkpoint (0: none yet).
inline int checkpointed_round(const std::filesystem::path& out) {
  const std::filesystem::path index = out / "checkpoint" / "checkpoint.json";
  if (!std::filesystem::exists(index)) return 0;
  return nlohmann::json::parse(read_file(index))["round"].get<int>();
}

// Waits up to `seconds` for `process` to exit with `code`; shows its log if not.
inline void require_exit(Process& process, int code, const std::filesystem::path& log,
                         int seconds = 120) {
  const auto exit = process.wait(std::chrono::seconds(seconds));
  INFO(read_file(log));
  REQUIRE(exit == code);
}

}  // namespace lorafed::test
