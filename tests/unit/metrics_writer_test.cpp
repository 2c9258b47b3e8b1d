// metrics.jsonl and summary.json on a full disk: a record that cannot be
// written is an error at once, naming the file, and never leaves half a line.
#include <sys/resource.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lorafed/error.hpp"
#include "src/metrics_writer.hpp"
#include "unit/temp_folder.hpp"

using Catch::Matchers::Contains;
namespace fs = std::filesystem;
using lorafed::test::fresh_directory;
using lorafed::test::read_text;

namespace {

// RLIMIT_FSIZE for this process while in scope: a write past it fails with
// EFBIG (SIGXFSZ ignored), as one past the end of a full disk does.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &saved_);
    previous_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit = saved_;
    limit.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, previous_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  rlimit saved_{};
  void (*previous_handler_)(int) = nullptr;
};

}  // namespace

TEST_CASE("a record written to a full disk throws at once, naming the file and the reason",
          "[metrics]") {
  const fs::path dir = fresh_directory("test-metrics-full");
  fs::create_symlink("/dev/full", dir / "metrics.jsonl");
  lorafed::MetricsWriter writer(dir);
  CHECK_THROWS_MATCHES(
      writer.record({{"type", "round"}, {"round", 0}}), lorafed::Error,
      Catch::Matchers::Message("cannot write a record to '" + (dir / "metrics.jsonl").string() +
                               "': No space left on device"));
  fs::remove_all(dir);
}

TEST_CASE("a record cut short by the disk is taken back: the file keeps whole lines", "[metrics]") {
  const fs::path dir = fresh_directory("test-metrics-short");
  const fs::path path = dir / "metrics.jsonl";
  lorafed::MetricsWriter writer(dir);
  writer.record({{"type", "round"}, {"round", 0}});
  writer.record({{"type", "round"}, {"round", 1}});
  const std::string whole = read_text(path);
  {
    // Room for 10 more bytes: the next line gets partly written, then fails.
    const FileSizeLimit limit(whole.size() + 10);
    CHECK_THROWS_WITH(
        writer.record({{"type", "round"}, {"round", 2}, {"note", std::string(64, 'x')}}),
        Contains(path.string()) && Contains("File too large") && !Contains("incomplete"));
  }
  CHECK(read_text(path) == whole);
  writer.record({{"type", "round"}, {"round", 2}});  // the disk has room again
  CHECK(read_text(path) == whole + "{\"round\":2,\"type\":\"round\"}\n");
  fs::remove_all(dir);
}

TEST_CASE("records written together are all in the file, or none of them", "[metrics]") {
  const fs::path dir = fresh_directory("test-metrics-batch");
  const fs::path path = dir / "metrics.jsonl";
  lorafed::MetricsWriter writer(dir);
  writer.record({{"type", "round"}, {"round", 0}});
  const std::string whole = read_text(path);
  const std::vector<nlohmann::json> clients = {{{"client", "client-0"}, {"round", 1}},
                                               {{"client", "client-1"}, {"round", 1}},
                                               {{"client", "client-2"}, {"round", 1}}};
  {
    // Room for the first line and part of the second: none of the three stays.
    const FileSizeLimit limit(whole.size() + clients[0].dump().size() + 5);
    CHECK_THROWS_WITH(writer.record_all(clients),
                      Contains(path.string()) && Contains("File too large"));
  }
  CHECK(read_text(path) == whole);
  writer.record_all(clients);
  CHECK(read_text(path) ==
        whole + clients[0].dump() + "\n" + clients[1].dump() + "\n" + clients[2].dump() + "\n");
  writer.record_all({});  // nothing to write: nothing written
  CHECK(read_text(path).size() == whole.size() + 3 * clients[0].dump().size() + 3);
  fs::remove_all(dir);
}

TEST_CASE("a summary that cannot be written throws, naming summary.json and the reason",
          "[metrics]") {
  const fs::path dir = fresh_directory("test-summary-full");
  lorafed::MetricsWriter writer(dir);
  // The summary goes to <out>/summary.json.tmp.<pid> first, then is renamed;
  // point that temporary name at a full device.
  const fs::path temporary = dir / ("summary.json.tmp." + std::to_string(::getpid()));
  fs::create_symlink("/dev/full", temporary);
  CHECK_THROWS_WITH(
      writer.write_summary({{"rounds", 3}}),
      Contains((dir / "summary.json").string()) && Contains("No space left on device"));
  CHECK_FALSE(fs::exists(dir / "summary.json"));
  CHECK_FALSE(fs::exists(fs::symlink_status(temporary)));
  fs::remove_all(dir);
}
