// `lorafed report` (docs/outputs.md §Reports) on runs whose headline metric
// is exact_match: report.md and the figures show it in percent, as accuracy.
// Needs gnuplot, as `lorafed report` does.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "src/report/report.hpp"

using namespace lorafed;
namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

RunData run(const std::string& strategy, double first_round, double final_value) {
  RunData data;
  data.directory = fs::path("runs") / strategy;
  data.label = strategy;
  data.seed = 1;
  data.summary = {{"strategy", strategy},
                  {"final_exact_match", final_value},
                  {"best_exact_match", final_value},
                  {"final_loss", 1.2},
                  {"bytes_per_client_round", 1000}};
  data.rounds = {{{"type", "round"}, {"round", 0}, {"exact_match", 0.0}, {"loss", 9.0}},
                 {{"type", "round"}, {"round", 1}, {"exact_match", first_round}, {"loss", 2.0}},
                 {{"type", "round"}, {"round", 2}, {"exact_match", final_value}, {"loss", 1.2}}};
  return data;
}

// The rows of a figure's .dat file, by x: its series' values.
std::map<double, std::vector<double>> figure_data(const fs::path& path) {
  std::map<double, std::vector<double>> rows;
  std::istringstream lines(read_text(path));
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line.starts_with("#")) continue;
    std::istringstream fields(line);
    double x = 0;
    fields >> x;
    for (double value = 0; fields >> value;) rows[x].push_back(value);
  }
  return rows;
}

}  // namespace

TEST_CASE("a report shows exact match in percent in its table, text and figures", "[report]") {
  const fs::path out = fs::temp_directory_path() / "lorafed-report-exact-match";
  fs::remove_all(out);
  const fs::path markdown =
      write_report({run("fedhl", 0.105, 0.152), run("flexlora", 0.105, 0.144)}, {out, ""});
  const std::string md = read_text(markdown);
  INFO(md);
  CHECK(md.find("| setting | runs | final exact_match (%) | best exact_match (%) |") !=
        std::string::npos);
  CHECK(md.find("| fedhl | 1 | 15.20 | 15.20 |") != std::string::npos);
  CHECK(md.find("| flexlora | 1 | 14.40 | 14.40 |") != std::string::npos);
  CHECK(md.find("**fedhl** has the best final exact_match: 15.20, 0.80 points ahead of flexlora "
                "(14.40)") != std::string::npos);

  const std::string script = read_text(out / "report.gp");
  CHECK(script.find("exact_match (%)") != std::string::npos);
  const auto metric = figure_data(out / "metric.dat");
  REQUIRE(metric.contains(2));
  REQUIRE(metric.at(2).size() == 2);
  CHECK(metric.at(2)[0] == Approx(15.2));
  CHECK(metric.at(2)[1] == Approx(14.4));
  CHECK(metric.at(1)[0] == Approx(10.5));
}
