// `lorafed sweep`: a grid of simulated federations and its combined tables
// (docs/outputs.md §Sweeps), checked against the runs' own summaries.
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <map>
#include <sstream>

#include "integration/federation_runs.hpp"
#include "integration/process.hpp"

using lorafed::test::fresh_dir;
using lorafed::test::has_metrics_line;
using lorafed::test::Process;
using lorafed::test::read_file;
using lorafed::test::wait_until;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> fields;
  std::stringstream stream(line);
  for (std::string field; std::getline(stream, field, ',');) fields.push_back(field);
  return fields;
}

// results.csv as rows of column → text.
std::vector<std::map<std::string, std::string>> read_csv(const fs::path& path) {
  std::stringstream text(read_file(path));
  std::string line;
  std::getline(text, line);
  const std::vector<std::string> header = split(line);
  std::vector<std::map<std::string, std::string>> rows;
  while (std::getline(text, line)) {
    const std::vector<std::string> fields = split(line);
    REQUIRE(fields.size() == header.size());
    std::map<std::string, std::string> row;
    for (std::size_t i = 0; i < header.size(); ++i) row[header[i]] = fields[i];
    rows.push_back(row);
  }
  return rows;
}

// `lorafed inspect`'s |ΔW| per layer: the seventh field of each row after the "layer" header.
std::map<std::string, double> delta_norms(const std::string& shown) {
  std::map<std::string, double> norms;
  std::stringstream lines(shown);
  bool in_table = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("layer ")) {
      in_table = true;
      continue;
    }
    if (!in_table) continue;
    std::stringstream fields(line);
    std::vector<std::string> row;
    for (std::string field; fields >> field;) row.push_back(field);
    REQUIRE(row.size() > 7);
    norms[row[0]] = std::stod(row[6]);
  }
  return norms;
}

int run_sweep(const fs::path& out, const std::string& config, const std::string& log) {
  Process sweep({LORAFED_EXECUTABLE, "sweep", config, "--out", out.string(), "--log-level", "warn"},
                out.parent_path() / log);
  const auto code = sweep.wait(std::chrono::seconds(300));
  INFO(read_file(out.parent_path() / log));
  REQUIRE(code.has_value());
  return *code;
}

}  // namespace

TEST_CASE("a sweep runs every point and tabulates what the runs measured", "[sweep]") {
  const fs::path work = fs::path(LORAFED_TEST_WORK_DIR) / "sweep";
  fs::remove_all(work);
  fs::create_directories(work);
  const fs::path out = work / "grid";
  const std::string config = std::string(LORAFED_TEST_CONFIG_DIR) + "/tiny-sweep.toml";
  REQUIRE(run_sweep(out, config, "sweep.log") == 0);

  // One directory per point: 3 strategies × 2 seeds.
  std::map<std::string, std::vector<json>> summaries;
  for (const std::string strategy : {"fedavg", "fedhl", "flora"}) {
    for (const int seed : {1, 2}) {
      const fs::path run = out / (strategy + "-seed" + std::to_string(seed));
      INFO(run);
      REQUIRE(fs::exists(run / "config.toml"));
      REQUIRE(fs::exists(run / "metrics.jsonl"));
      const json summary = json::parse(read_file(run / "summary.json"));
      CHECK(summary["strategy"] == strategy);
      CHECK(summary["seed"] == seed);
      // Every client evaluated its own model, FLoRA's clients too (an
      // evaluation adapter of rank Σ r_i, above the clients' own rank 4).
      CHECK(summary.contains("final_federated_accuracy"));
      CHECK(summary["client_failures"] == 0);
      summaries[strategy].push_back(summary);
    }
  }
  // The two seeds are different federations.
  CHECK(summaries["fedavg"][0]["final_loss"] != summaries["fedavg"][1]["final_loss"]);

  // Each row's mean and sample std are the runs' own.
  const auto rows = read_csv(out / "results.csv");
  REQUIRE(rows.size() == 3);
  for (const auto& row : rows) {
    const std::string strategy = row.at("strategy.name");
    INFO(strategy);
    CHECK(row.at("runs") == "2");
    CHECK(row.at("failed") == "0");
    for (const std::string key : {"final_accuracy", "final_loss", "best_accuracy", "best_loss"}) {
      INFO(key);
      const double a = summaries[strategy][0][key].get<double>();
      const double b = summaries[strategy][1][key].get<double>();
      const double mean = (a + b) / 2;
      const double std = std::abs(a - b) / std::sqrt(2.0);
      CHECK(std::stod(row.at(key + "_mean")) == Approx(mean).epsilon(1e-8));
      CHECK(std::stod(row.at(key + "_std")) == Approx(std).epsilon(1e-8).margin(1e-12));
    }
  }
  const std::string markdown = read_file(out / "results.md");
  CHECK(markdown.find("| strategy.name | seeds | final accuracy % |") != std::string::npos);
  CHECK(markdown.find("| fedhl | 2 |") != std::string::npos);
  const json described = json::parse(read_file(out / "sweep.json"));
  CHECK(described["points"].size() == 6);

  // Each run exported its global adapter for PEFT; `lorafed inspect` reads it.
  const fs::path peft = out / "fedavg-seed1" / "peft" / "global";
  REQUIRE(fs::exists(peft / "adapter_model.safetensors"));
  CHECK_FALSE(fs::exists(out / "fedavg-seed1" / "peft" / "rank-4"));  // one rank: no truncations
  Process inspect({LORAFED_EXECUTABLE, "inspect", peft.string()}, work / "inspect.log");
  REQUIRE(inspect.wait(std::chrono::seconds(60)) == 0);
  const std::string shown = read_file(work / "inspect.log");
  INFO(shown);
  CHECK(shown.find("PEFT LoRA adapter, 3 layers, r 4, lora_alpha 8") != std::string::npos);
  CHECK(shown.find("fc1                           4×784      128×4") != std::string::npos);
  // The run's checkpoint holds the same model as factors at scale alpha/r
  // (alpha 8, rank 4): inspect shows the same ΔW as the export's.
  Process checkpoint(
      {LORAFED_EXECUTABLE, "inspect", (out / "fedavg-seed1" / "checkpoint").string()},
      work / "inspect-checkpoint.log");
  REQUIRE(checkpoint.wait(std::chrono::seconds(60)) == 0);
  const std::string from_checkpoint = read_file(work / "inspect-checkpoint.log");
  INFO(from_checkpoint);
  CHECK(from_checkpoint.find("lora_alpha 8 (scale 2) from checkpoint.json") != std::string::npos);
  const auto exported_norms = delta_norms(shown);
  const auto checkpoint_norms = delta_norms(from_checkpoint);
  REQUIRE(exported_norms.size() == 3);
  REQUIRE(checkpoint_norms.size() == 3);
  for (const auto& [layer, norm] : exported_norms) {
    INFO(layer);
    CHECK(checkpoint_norms.at(layer) == Approx(norm).epsilon(2e-3));  // 4 digits shown
  }

  // A report of the sweep: non-empty PNGs that report.md embeds.
  Process report({LORAFED_EXECUTABLE, "report", out.string(), "--out", (work / "report").string()},
                 work / "report.log");
  REQUIRE(report.wait(std::chrono::seconds(120)) == 0);
  const std::string report_md = read_file(work / "report" / "report.md");
  INFO(report_md);
  for (const std::string figure : {"metric", "loss", "client_metric_by_rank", "bytes",
                                   "fedhl_truncation_1", "fedhl_weights_1"}) {
    INFO(figure);
    const std::string png = read_file(work / "report" / (figure + ".png"));
    CHECK(png.size() > 2000);
    CHECK(png.substr(0, 8) == "\x89PNG\r\n\x1a\n");
    CHECK(report_md.find("(" + figure + ".png)") != std::string::npos);
  }
  CHECK(report_md.find("| setting | runs | final accuracy (%) |") != std::string::npos);

  // Runs picked out of a sweep still group by their grid point.
  Process picked({LORAFED_EXECUTABLE, "report", (out / "fedhl-seed1").string(),
                  (out / "fedhl-seed2").string(), "--out", (work / "picked").string()},
                 work / "picked.log");
  REQUIRE(picked.wait(std::chrono::seconds(120)) == 0);
  CHECK(read_file(work / "picked" / "report.md").find("| fedhl | 2 |") != std::string::npos);

  // Run again from a renamed copy of the sweep file (the points' config.toml
  // name the file in a comment): every point is already done, nothing is rerun.
  const auto before = fs::last_write_time(out / "fedhl-seed1" / "summary.json");
  const fs::path renamed = work / "renamed-sweep.toml";
  fs::copy_file(config, renamed);
  Process again({LORAFED_EXECUTABLE, "sweep", renamed.string(), "--out", out.string()},
                work / "again.log");
  REQUIRE(again.wait(std::chrono::seconds(120)) == 0);
  const std::string log = read_file(work / "again.log");
  CHECK(log.find("6/6: flora-seed2 already done") != std::string::npos);
  CHECK(fs::last_write_time(out / "fedhl-seed1" / "summary.json") == before);
  Process dry({LORAFED_EXECUTABLE, "sweep", renamed.string(), "--out", out.string(), "--dry-run"},
              work / "dry.log");
  REQUIRE(dry.wait(std::chrono::seconds(120)) == 0);
  CHECK_THAT(read_file(work / "dry.log"),
             Catch::Matchers::Contains((out / "flora-seed2").string() + " (done)"));

  // Another configuration into the same folder: refused before anything runs,
  // naming the folders; the finished runs stay as they were.
  const auto metrics_before = read_file(out / "fedavg-seed1" / "metrics.jsonl");
  Process changed({LORAFED_EXECUTABLE, "sweep", config, "--out", out.string(), "--set",
                   "train.learning_rate=0.02"},
                  work / "changed.log");
  CHECK(changed.wait(std::chrono::seconds(120)) == 2);
  const std::string refused = read_file(work / "changed.log");
  INFO(refused);
  CHECK_THAT(refused, Catch::Matchers::Contains(
                          "6 point folder(s) under " + out.string() +
                          " hold results of another configuration (their config.toml differs): "
                          "fedavg-seed1, fedavg-seed2, fedhl-seed1 and 3 more"));
  CHECK(fs::last_write_time(out / "fedhl-seed1" / "summary.json") == before);
  CHECK(read_file(out / "fedavg-seed1" / "metrics.jsonl") == metrics_before);
  CHECK(read_file(out / "fedavg-seed1" / "config.toml").find("learning_rate = 0.01") !=
        std::string::npos);
}

TEST_CASE("a configuration without a [sweep] table is refused before anything runs", "[sweep]") {
  const fs::path work = fs::path(LORAFED_TEST_WORK_DIR) / "sweep-refused";
  fs::remove_all(work);
  fs::create_directories(work);
  Process sweep(
      {LORAFED_EXECUTABLE, "sweep", std::string(LORAFED_TEST_CONFIG_DIR) + "/tiny-fmnist.toml",
       "--out", (work / "grid").string()},
      work / "sweep.log");
  CHECK(sweep.wait(std::chrono::seconds(60)) == 2);
  CHECK(read_file(work / "sweep.log").find("has no [sweep] table") != std::string::npos);
  CHECK_FALSE(fs::exists(work / "grid"));
}

TEST_CASE("a key only some points' plugins take fails the sweep before any point runs", "[sweep]") {
  const fs::path work = fs::path(LORAFED_TEST_WORK_DIR) / "sweep-checked";
  fs::remove_all(work);
  fs::create_directories(work);
  // `weighting = "truncation"` is FedHL's: FedAvg takes only example weightings.
  // The sweep names tiny-sweep.toml's settings as its base instead of repeating them.
  const fs::path config = work / "weighting.toml";
  {
    std::ofstream file(config);
    file << "[sweep]\nbase = \"" << LORAFED_TEST_CONFIG_DIR << "/tiny-fmnist.toml\"\n"
         << "seeds = [1]\n[sweep.grid]\n\"strategy.name\" = [\"fedhl\", \"fedavg\"]\n"
         << "[strategy]\nname = \"fedhl\"\nweighting = \"truncation\"\n"
         << "[transport]\nname = \"inproc\"\n";
  }
  for (const bool dry : {true, false}) {
    std::vector<std::string> argv = {LORAFED_EXECUTABLE, "sweep", config.string(), "--out",
                                     (work / "grid").string()};
    if (dry) argv.push_back("--dry-run");
    Process sweep(argv, work / (dry ? "dry.log" : "sweep.log"));
    CHECK(sweep.wait(std::chrono::seconds(120)) == 2);
    const std::string log = read_file(work / (dry ? "dry.log" : "sweep.log"));
    INFO(log);
    CHECK(log.find("sweep point fedavg-seed1") != std::string::npos);
    CHECK(log.find("key 'weighting'") != std::string::npos);
    CHECK_FALSE(fs::exists(work / "grid"));  // nothing ran, nothing was written
  }
  // Without the FedHL-only key, the same sweep on its base checks and lists both points.
  {
    std::ofstream file(config);
    file << "[sweep]\nbase = \"" << LORAFED_TEST_CONFIG_DIR << "/tiny-fmnist.toml\"\n"
         << "seeds = [1]\n[sweep.grid]\n\"strategy.name\" = [\"fedhl\", \"fedavg\"]\n"
         << "[transport]\nname = \"inproc\"\n";
  }
  Process dry({LORAFED_EXECUTABLE, "sweep", config.string(), "--out", (work / "grid").string(),
               "--dry-run"},
              work / "dry-ok.log");
  CHECK(dry.wait(std::chrono::seconds(120)) == 0);
  CHECK(read_file(work / "dry-ok.log").find("2 runs, each checked") != std::string::npos);
}

TEST_CASE("SIGTERM stops the whole sweep, and the same command continues it", "[sweep][signals]") {
  const fs::path work = fresh_dir("sweep-stopped");
  const fs::path out = work / "sweep";
  const std::string config = std::string(LORAFED_TEST_CONFIG_DIR) + "/tiny-sweep.toml";
  // The configuration of some earlier sweep, with nothing run: this point's replaces it.
  fs::create_directories(out / "fedavg-seed1");
  std::ofstream(out / "fedavg-seed1" / "config.toml") << "# another configuration\n";
  const std::vector<std::string> argv = {
      LORAFED_EXECUTABLE, "sweep", config, "--out", out.string(), "--set", "federation.rounds=500"};
  // Runs the sweep until metrics.jsonl of its first point holds round
  // `round`, then stops it with SIGTERM.
  const auto stop_at_round = [&](int round, const std::string& log_name) {
    Process sweep(argv, work / log_name);
    REQUIRE(wait_until(
        [&] {
          return has_metrics_line(out / "fedavg-seed1", [round](const json& line) {
            return line["type"] == "round" && line["round"] == round;
          });
        },
        std::chrono::seconds(120)));
    ::kill(sweep.pid(), SIGTERM);
    const auto code = sweep.wait(std::chrono::seconds(60));
    const std::string log = read_file(work / log_name);
    INFO(log);
    REQUIRE(code == 130);
    CHECK_THAT(log, Catch::Matchers::Contains("sweep stopped in point fedavg-seed1 (1/6)"));
    CHECK_FALSE(fs::exists(out / "fedavg-seed1" / "summary.json"));
    CHECK_FALSE(fs::exists(out / "fedavg-seed2" / "metrics.jsonl"));  // the next point never began
    return log;
  };
  stop_at_round(1, "sweep.log");
  // Round 1's record, timings and all: a run started again would measure it anew.
  std::string first_round;
  int last_round = 0;
  for (const json& line : lorafed::test::read_metrics(out / "fedavg-seed1")) {
    if (line["type"] != "round") continue;
    if (line["round"] == 1) first_round = line.dump();
    last_round = std::max(last_round, line["round"].get<int>());
  }
  REQUIRE_FALSE(first_round.empty());
  Process dry({LORAFED_EXECUTABLE, "sweep", config, "--out", out.string(), "--set",
               "federation.rounds=500", "--dry-run"},
              work / "dry.log");
  REQUIRE(dry.wait(std::chrono::seconds(120)) == 0);
  CHECK_THAT(read_file(work / "dry.log"),
             Catch::Matchers::Contains((out / "fedavg-seed1").string() +
                                       " (resumes from its checkpoint)\n" +
                                       (out / "fedavg-seed2").string() + "\n"));

  // The same command resumes the point from its checkpoint: round 1's record
  // is kept as it was, and the rounds go on from there, each recorded once.
  const std::string resumed = stop_at_round(last_round + 2, "resumed.log");
  CHECK_THAT(resumed, Catch::Matchers::Contains("fedavg-seed1, resumed from its checkpoint"));
  std::vector<int> rounds;
  for (const json& line : lorafed::test::read_metrics(out / "fedavg-seed1")) {
    if (line["type"] != "round") continue;
    rounds.push_back(line["round"].get<int>());
    if (rounds.back() == 1) CHECK(line.dump() == first_round);
  }
  REQUIRE(rounds.size() >= static_cast<std::size_t>(last_round + 3));
  for (std::size_t i = 0; i < rounds.size(); ++i) CHECK(rounds[i] == static_cast<int>(i));
}
