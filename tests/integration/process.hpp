#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lorafed::test {

// A child process whose output goes to a log file. Killed (SIGKILL) if still
// running when destroyed, so a failing test leaves no strays.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const std::filesystem::path& log,
          const std::map<std::string, std::string>& extra_env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // The exit code, or nullopt if it did not exit within `timeout`. A process
  // killed by a signal reports 128 + the signal.
  std::optional<int> wait(std::chrono::seconds timeout);
  void kill_hard();  // SIGKILL, as a crash or an OOM kill would
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

std::string read_file(const std::filesystem::path& path);

}  // namespace lorafed::test
