// `lorafed report` (docs/outputs.md §Reports): what its figures show that
// can be checked without eyes (the .dat columns, bands over seeds, a style
// per series, whole-number round ticks, series that lie on top of each
// other) and report.md. Needs gnuplot, as `lorafed report` does.
#include <fmt/format.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "src/report/gnuplot.hpp"
#include "src/report/report.hpp"
#include "unit/temp_folder.hpp"

using namespace lorafed;
namespace fs = std::filesystem;

namespace {

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

// The rows of a figure's .dat file, by x: for each series its mean, min, max
// and number of values.
std::map<double, std::vector<double>> figure_data(const fs::path& path) {
  std::map<double, std::vector<double>> rows;
  std::istringstream lines(test::read_text(path));
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line.starts_with("#")) continue;
    std::istringstream fields(line);
    std::string field;
    fields >> field;
    const double x = std::stod(field);
    while (fields >> field) rows[x].push_back(std::stod(field));  // stod reads NaN
  }
  return rows;
}

}  // namespace

TEST_CASE("a report shows exact match in percent in its table, text and figures", "[report]") {
  const fs::path out = fs::temp_directory_path() / "lorafed-report-exact-match";
  fs::remove_all(out);
  const fs::path markdown =
      write_report({run("fedhl", 0.105, 0.152), run("flexlora", 0.105, 0.144)}, {out, ""});
  const std::string md = test::read_text(markdown);
  INFO(md);
  CHECK(md.find("| setting | runs | final exact_match (%) | best exact_match (%) |") !=
        std::string::npos);
  CHECK(md.find("| fedhl | 1 | 15.20 | 15.20 |") != std::string::npos);
  CHECK(md.find("| flexlora | 1 | 14.40 | 14.40 |") != std::string::npos);
  CHECK(md.find("**fedhl** has the best final exact_match: 15.20, 0.80 points ahead of flexlora "
                "(14.40)") != std::string::npos);

  const std::string script = test::read_text(out / "report.gp");
  CHECK(script.find("exact_match (%)") != std::string::npos);
  const auto metric = figure_data(out / "metric.dat");
  REQUIRE(metric.contains(2));
  REQUIRE(metric.at(2).size() == 8);
  CHECK(metric.at(2)[0] == Approx(15.2));
  CHECK(metric.at(2)[4] == Approx(14.4));
  CHECK(metric.at(1)[0] == Approx(10.5));
}

namespace {

// The header line of a .dat file (the one naming the columns), split at tabs.
std::vector<std::string> data_columns(const fs::path& path) {
  std::istringstream lines(test::read_text(path));
  std::string last_comment;
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("#")) break;
    last_comment = line.substr(2);
  }
  std::vector<std::string> columns;
  std::istringstream fields(last_comment);
  for (std::string field; std::getline(fields, field, '\t');) columns.push_back(field);
  return columns;
}

// The key entries of a script ("NaN with ... title 'name'"): colour and point type per name.
std::map<std::string, std::pair<std::string, int>> key_styles(const std::string& script) {
  std::map<std::string, std::pair<std::string, int>> styles;
  const std::regex entry(
      "NaN with [a-z]+ lc rgb '(#[0-9A-Fa-f]{6})'[^\\n]*? pt ([0-9]+)[^\\n]*? "
      "title '([^']*)'");
  for (auto it = std::sregex_iterator(script.begin(), script.end(), entry);
       it != std::sregex_iterator(); ++it) {
    styles[(*it)[3]] = {(*it)[1], std::stoi((*it)[2])};
  }
  return styles;
}

// A run of one strategy and seed whose clients' fits moved `bytes` per round.
RunData bytes_run(const std::string& strategy, std::int64_t seed, double bytes_per_client,
                  int rounds = 4, int clients = 2) {
  RunData data;
  data.directory = fs::path("runs") / (strategy + "-seed" + std::to_string(seed));
  data.label = strategy;
  data.seed = seed;
  data.summary = {{"strategy", strategy},
                  {"final_accuracy", 0.8},
                  {"best_accuracy", 0.8},
                  {"bytes_per_client_round", bytes_per_client}};
  for (int round = 0; round <= rounds; ++round) {
    data.rounds.push_back({{"type", "round"},
                           {"round", round},
                           {"accuracy", 0.5 + 0.01 * round + 0.001 * static_cast<double>(seed)},
                           {"loss", 1.0}});
    for (int client = 0; round > 0 && client < clients; ++client) {
      data.clients.push_back({{"type", "client"},
                              {"round", round},
                              {"client", "client-" + std::to_string(client)},
                              {"phase", "fit"},
                              {"status", "ok"},
                              {"bytes_down", bytes_per_client / 2},
                              {"bytes_up", bytes_per_client / 2}});
    }
  }
  return data;
}

}  // namespace

TEST_CASE("a figure's data file names and holds each series' mean, min, max and count",
          "[report]") {
  const fs::path out = fs::temp_directory_path() / "lorafed-report-bands";
  fs::remove_all(out);
  fs::create_directories(out);
  Figure figure("accuracy", "accuracy per round", "round", "accuracy (%)");
  for (const double value : {80.0, 82.0, 87.0}) figure.add("fedhl", 1, value);  // three seeds
  figure.add("flexlora", 1, 84);
  figure.add("fedhl", 2, 90);  // flexlora has no value at round 2
  figure.write_data(out);

  CHECK(data_columns(out / "accuracy.dat") ==
        std::vector<std::string>{"round", "fedhl mean", "fedhl min", "fedhl max", "fedhl n",
                                 "flexlora mean", "flexlora min", "flexlora max", "flexlora n"});
  const auto rows = figure_data(out / "accuracy.dat");
  REQUIRE(rows.size() == 2);
  REQUIRE(rows.at(1).size() == 8);
  CHECK(rows.at(1)[0] == Approx(83.0));
  CHECK(rows.at(1)[1] == Approx(80.0));
  CHECK(rows.at(1)[2] == Approx(87.0));
  CHECK(rows.at(1)[3] == 3);
  CHECK(rows.at(1)[4] == Approx(84.0));
  CHECK(rows.at(1)[5] == Approx(84.0));
  CHECK(rows.at(1)[6] == Approx(84.0));
  CHECK(rows.at(1)[7] == 1);
  REQUIRE(rows.at(2).size() == 8);
  CHECK(std::isnan(rows.at(2)[4]));
  CHECK(rows.at(2)[7] == 0);

  // The band is drawn from the min and max columns, and the caption says what it is.
  CHECK(figure.has_spread());
  const std::string script = figure.script();
  CHECK(script.find("'accuracy.dat' using 1:($3):($4) with filledcurves") != std::string::npos);
  CHECK(script.find("'accuracy.dat' using 1:($7):($8) with filledcurves") != std::string::npos);
  CHECK(script.find("transparent solid 0.2") != std::string::npos);
  CHECK(script.find("lines: mean over seeds; shaded: from the lowest to the highest of them") !=
        std::string::npos);

  // A figure of single values has no band and says nothing about one.
  Figure single("single", "t", "round", "y");
  single.add("a", 1, 1);
  single.add("a", 2, 2);
  CHECK_FALSE(single.has_spread());
  CHECK(single.script().find("filledcurves") == std::string::npos);
  CHECK(single.caption().empty());
}

TEST_CASE("every series of a figure gets a colour and marker pair of its own", "[report]") {
  std::set<std::string> colours;
  std::set<std::pair<std::string, int>> pairs;
  for (std::size_t i = 0; i < 60; ++i) {
    const SeriesStyle style = series_style(i);
    if (i < kPaletteSize) colours.insert(style.colour);
    pairs.emplace(style.colour, style.point_type);
  }
  CHECK(colours.size() == kPaletteSize);
  CHECK(kPaletteSize >= 12);
  CHECK(pairs.size() == 60);

  // Twelve clients in one figure: twelve key entries, twelve colours, twelve markers.
  Figure figure("weights", "weights", "round", "weight");
  for (int client = 0; client < 12; ++client) {
    for (int round = 1; round <= 5; ++round) {
      figure.add("client-" + std::to_string(client), round, 0.01 * (client + 1) * round);
    }
  }
  const auto styles = key_styles(figure.script());
  REQUIRE(styles.size() == 12);
  std::set<std::string> used_colours;
  std::set<int> used_markers;
  for (const auto& [name, style] : styles) {
    used_colours.insert(style.first);
    used_markers.insert(style.second);
  }
  CHECK(used_colours.size() == 12);
  CHECK(used_markers.size() == 12);
}

TEST_CASE("round axes have whole-number ticks and the rank axis one tick per rank", "[report]") {
  auto rounds = [](int last) {
    Figure figure("metric", "t", "round", "y");
    figure.integer_x = true;
    for (int round = 0; round <= last; ++round) figure.add("a", round, round);
    return figure.script();
  };
  for (const auto& [last, ticks] :
       std::vector<std::pair<int, std::string>>{{3, "set xtics 0, 1\n"},
                                                {10, "set xtics 0, 1\n"},
                                                {30, "set xtics 0, 5\n"},
                                                {60, "set xtics 0, 10\n"},
                                                {500, "set xtics 0, 50\n"}}) {
    INFO(last);
    const std::string script = rounds(last);
    CHECK(script.find(ticks) != std::string::npos);
    CHECK(script.find("set format x '%.0f'") != std::string::npos);
    CHECK(script.find("set xrange [0:" + std::to_string(last) + "]") != std::string::npos);
  }
  // One round only: a range around it, still whole-number ticks.
  Figure one("one", "t", "round", "y");
  one.integer_x = true;
  one.add("a", 1, 0.5);
  CHECK(one.script().find("set xtics 0, 1\n") != std::string::npos);
  CHECK(one.script().find("set xrange [0:2]") != std::string::npos);

  Figure ranks("by_rank", "t", "rank", "y");
  ranks.log_x = true;
  for (const int rank : {2, 4, 8, 16, 32}) ranks.add("a", rank, rank);
  const std::string script = ranks.script();
  CHECK(script.find("set logscale x 2\n") != std::string::npos);
  CHECK(script.find("set xtics ('2' 2, '4' 4, '8' 8, '16' 16, '32' 32)") != std::string::npos);
  CHECK(script.find("set xrange [1.6:40]") != std::string::npos);
}

TEST_CASE("series with equal values are all drawn and told apart", "[report]") {
  Figure figure("bytes", "bytes", "round", "MB");
  figure.integer_x = true;
  figure.y_scale = Figure::Scale::automatic;
  for (int round = 1; round <= 30; ++round) {
    for (const std::string strategy : {"fedavg", "fedhl", "flexlora"}) {
      figure.add(strategy, round, 1.01);
    }
    figure.add("flora", round, 5.85);
  }
  CHECK_FALSE(figure.log_y());  // 5.8 times: linear, from zero
  CHECK(figure.script().find("set yrange [0:*]") != std::string::npos);
  const auto groups = figure.overlapping();
  REQUIRE(groups.size() == 1);
  CHECK(groups[0] == std::vector<std::size_t>{0, 1, 2});
  // Their markers lie at different rounds: every step-th round, from different offsets.
  const auto markers = figure.markers();
  REQUIRE(markers.size() == 4);
  CHECK(markers[0].step >= 3);
  CHECK(std::set<std::size_t>{markers[0].offset, markers[1].offset, markers[2].offset}.size() == 3);
  const std::string script = figure.script();
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(markers[i].step == markers[0].step);
    CHECK(script.find(fmt::format("every {}::{} with points", markers[i].step,
                                  markers[i].offset)) != std::string::npos);
  }
  // And different dash patterns, in the key too.
  for (const int dash : {1, 2, 3}) {
    CHECK(script.find(fmt::format("NaN with linespoints lc rgb '{}' lw 1.5 dt {}",
                                  series_style(dash - 1).colour, dash)) != std::string::npos);
  }
  CHECK(key_styles(script).size() == 4);
  const auto caption = figure.caption();
  REQUIRE(caption.size() == 1);
  CHECK(caption[0] ==
        "fedavg, fedhl and flexlora lie on top of each other (markers at alternate "
        "x, dashed lines)");

  // With few x values every series has a marker at each, and those of
  // overlapping series sit one inside another, the first drawn largest.
  Figure few("few", "t", "rank", "y");
  for (const int rank : {2, 4, 8}) {
    few.add("fedhl, uniform", rank, 80);
    few.add("flexlora, uniform", rank, 80);
    few.add("hetlora, uniform", rank, 60 + rank);
  }
  const auto few_markers = few.markers();
  REQUIRE(few_markers.size() == 3);
  for (const auto& marker : few_markers) CHECK(marker.step == 1);
  CHECK(few_markers[0].size > few_markers[1].size);
  CHECK(few_markers[2].size == few_markers[1].size);
  REQUIRE(few.caption().size() == 1);
  CHECK(few.caption()[0] ==
        "\"fedhl, uniform\" and \"flexlora, uniform\" lie on top of each "
        "other (markers one inside another, dashed lines)");
}

TEST_CASE("a log axis is used for wide ranges and leaves out values it cannot show, saying so",
          "[report]") {
  Figure wide("bytes", "bytes", "round", "MB");
  wide.y_scale = Figure::Scale::automatic;
  wide.add("fedhl", 1, 0.15);
  wide.add("flora", 1, 6.1);  // 41 times
  CHECK(wide.log_y());
  CHECK(wide.script().find("set logscale y\n") != std::string::npos);

  // A zero cannot be drawn on a log axis: it is left out, and the caption says so.
  Figure with_zero("bytes", "bytes", "round", "MB");
  with_zero.y_scale = Figure::Scale::automatic;
  with_zero.add("fedhl", 1, 0.15);
  with_zero.add("fedhl", 2, 0.0);
  with_zero.add("flora", 1, 6.1);
  CHECK(with_zero.log_y());
  const std::string script = with_zero.script();
  CHECK(script.find("($2 > 0 ? $2 : NaN)") != std::string::npos);
  CHECK(script.find("log scale: 1 value ≤ 0 not drawn") != std::string::npos);

  // Close values stay linear, from zero, zeros and all.
  Figure close("bytes", "bytes", "round", "MB");
  close.y_scale = Figure::Scale::automatic;
  close.add("fedhl", 1, 1.0);
  close.add("fedhl", 2, 0.0);
  close.add("flora", 1, 6.1);
  CHECK_FALSE(close.log_y());
  CHECK(close.script().find("set yrange [0:*]") != std::string::npos);
  CHECK(close.caption().empty());

  // A log axis asked for, with nothing positive to show, is linear.
  Figure zeros("zeros", "t", "round", "y");
  zeros.y_scale = Figure::Scale::log;
  zeros.add("a", 1, 0);
  CHECK_FALSE(zeros.log_y());
}

TEST_CASE("a report's bytes figure holds every strategy, and report.md names those that overlap",
          "[report]") {
  const fs::path out = fs::temp_directory_path() / "lorafed-report-bytes";
  fs::remove_all(out);
  std::vector<RunData> runs;
  for (const std::int64_t seed : {1, 2, 3}) {
    runs.push_back(bytes_run("fedavg", seed, 101384));
    runs.push_back(bytes_run("fedhl", seed, 101384));
    runs.push_back(bytes_run("flexlora", seed, 101384));
    runs.push_back(bytes_run("flora", seed, 585050));
  }
  const std::string md = test::read_text(write_report(runs, {out, ""}));
  INFO(md);
  CHECK(data_columns(out / "bytes.dat") ==
        std::vector<std::string>{"round", "fedavg mean", "fedavg min", "fedavg max", "fedavg n",
                                 "fedhl mean", "fedhl min", "fedhl max", "fedhl n", "flexlora mean",
                                 "flexlora min", "flexlora max", "flexlora n", "flora mean",
                                 "flora min", "flora max", "flora n"});
  const std::string script = test::read_text(out / "report.gp");
  const auto bytes_script = script.substr(script.find("set output 'bytes.png'"));
  const auto bytes = figure_data(out / "bytes.dat");
  REQUIRE(bytes.size() == 4);  // rounds 1..4
  REQUIRE(bytes.at(1).size() == 16);
  CHECK(bytes.at(1)[0] == Approx(2 * 101384 / 1e6));
  CHECK(bytes.at(1)[12] == Approx(2 * 585050 / 1e6));
  CHECK(bytes.at(1)[15] == 3);  // three seeds
  // In MB: FLoRA moves more than 1 MB a round (kB when no setting does).
  CHECK(bytes_script.find("set ylabel 'MB'") != std::string::npos);
  CHECK(key_styles(bytes_script.substr(0, bytes_script.find("set output", 1))).size() == 4);
  CHECK(md.find("fedavg, fedhl and flexlora lie on top of each other") != std::string::npos);

  // Three seeds of accuracy: the metric figure's band spans them.
  const auto metric = figure_data(out / "metric.dat");
  REQUIRE(metric.contains(2));
  CHECK(metric.at(2)[0] == Approx(52.2));
  CHECK(metric.at(2)[1] == Approx(52.1));
  CHECK(metric.at(2)[2] == Approx(52.3));
  CHECK(md.find("the shaded band spans the lowest to the highest seed") != std::string::npos);
  CHECK(script.find("set format x '%.0f'") != std::string::npos);
}

TEST_CASE("figures can list clients and ranks in natural order", "[report]") {
  CHECK(natural_less("client-2", "client-10"));
  CHECK_FALSE(natural_less("client-10", "client-2"));
  CHECK(natural_less("rank 4", "rank 16"));
  CHECK(natural_less("client-1", "client-1 (r 2)"));
  CHECK_FALSE(natural_less("a", "a"));
  Figure figure("weights", "t", "round", "p");
  for (const std::string name : {"rank 8", "rank 32", "rank 2", "rank 16", "rank 4"}) {
    figure.add(name, 1, 0.2);
  }
  figure.sort_series();
  CHECK(figure.series() ==
        std::vector<std::string>{"rank 2", "rank 4", "rank 8", "rank 16", "rank 32"});
}

TEST_CASE("a figure with one x draws its spread as error bars", "[report]") {
  Figure figure("by_rank", "t", "rank", "accuracy (%)");
  figure.log_x = true;
  for (const double value : {30.0, 34.0}) figure.add("fedhl", 4, value);
  CHECK(figure.as_points());
  const std::string script = figure.script();
  CHECK(script.find("with yerrorbars") != std::string::npos);
  CHECK(script.find("filledcurves") == std::string::npos);
  REQUIRE_FALSE(figure.caption().empty());
  CHECK(figure.caption()[0].find("bars: from the lowest to the highest") != std::string::npos);
}
