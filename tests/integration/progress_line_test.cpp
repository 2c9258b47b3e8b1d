// The server's progress line (docs/outputs.md §A run directory): shares of
// examples in percent, as the tables and figures show them, while
// metrics.jsonl keeps the fraction.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sstream>

#include "integration/process.hpp"

using lorafed::test::Process;
using lorafed::test::read_file;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// The number after `name ` on the log line that contains `marker`, and what follows it.
std::pair<double, std::string> logged_value(const std::string& log, const std::string& marker,
                                            const std::string& name) {
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (line.find(marker) == std::string::npos) continue;
    const std::size_t at = line.find("  " + name + " ");
    REQUIRE(at != std::string::npos);
    std::size_t end = 0;
    const std::string rest = line.substr(at + name.size() + 3);
    const double value = std::stod(rest, &end);
    return {value, rest.substr(end, 1)};
  }
  FAIL("no log line with '" << marker << "'");
  return {};
}

}  // namespace

TEST_CASE("the progress line shows exact match in percent, metrics.jsonl a fraction",
          "[gpt][progress]") {
  const fs::path work = LORAFED_TEST_WORK_DIR;
  const fs::path out = work / "gpt-progress";
  fs::remove_all(out);
  fs::create_directories(out);
  // tiny-gpt.toml's base (cached beside gpt_test's), one round.
  Process run(
      {LORAFED_EXECUTABLE, "simulate", std::string(LORAFED_TEST_CONFIG_DIR) + "/tiny-gpt.toml",
       "--out", out.string(), "--set", "federation.rounds=1"},
      out / "simulate.log", {{"LORAFED_CACHE_DIR", (work / "cache").string()}});
  const auto code = run.wait(std::chrono::seconds(300));
  const std::string log = read_file(out / "simulate.log");
  INFO(log);
  REQUIRE(code == 0);

  json first_round;
  std::istringstream lines(read_file(out / "metrics.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    const json record = json::parse(line);
    if (record["type"] == "round" && record["round"] == 1) first_round = record;
  }
  REQUIRE(first_round.contains("exact_match"));
  const double fraction = first_round["exact_match"].get<double>();
  CHECK(fraction >= 0.0);
  CHECK(fraction <= 1.0);
  const auto [shown, unit] = logged_value(log, "round 1/1", "exact_match");
  CHECK(unit == "%");
  CHECK(shown == Approx(100 * fraction).margin(0.006));  // two decimals shown
}
