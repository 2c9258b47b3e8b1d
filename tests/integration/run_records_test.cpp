// What a run records of how it was made (docs/outputs.md): its resolved
// configuration, which reruns it and which a resume must match, and the
// settings named in summary.json.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>

#include "integration/federation_runs.hpp"
#include "integration/process.hpp"

using namespace lorafed::test;
using nlohmann::json;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

int run(std::vector<std::string> argv, const fs::path& log) {
  Process process(argv, log, kEnv);
  const auto code = process.wait(std::chrono::seconds(300));
  INFO(read_file(log));
  REQUIRE(code);
  return *code;
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream(path) << text;
}

}  // namespace

TEST_CASE("a run records its resolved configuration, reruns from it, and refuses a changed resume",
          "[records]") {
  const fs::path out = fresh_dir("records");
  const std::vector<std::string> settings = {
      "--set", "federation.rounds=2",
      "--set", "train.learning_rate=0.02",
      "--set", "transport.endpoint=\"tcp://127.0.0.1:47631\""};
  REQUIRE(run(command("simulate", out, settings), out / "first.log") == 0);

  // The record holds the file's keys and the --set values.
  const std::string recorded = read_file(out / "resolved-config.toml");
  CHECK_THAT(recorded, Contains("learning_rate = 0.02") && Contains("rounds = 2") &&
                           Contains("dirichlet_alpha = 1"));
  const json summary = read_summary(out);
  CHECK(summary["settings"]["strategy"]["name"] == "fedavg");
  CHECK(summary["settings"]["model"]["partition"] == "dirichlet");
  CHECK(summary["settings"]["ranks"] == json::array({4, 4, 4}));
  CHECK(summary["settings"]["seed"] == 11);

  // Rerun from the record alone: the same numbers.
  const fs::path rerun = fresh_dir("records-rerun");
  REQUIRE(run({LORAFED_EXECUTABLE, "simulate", (out / "resolved-config.toml").string(), "--out",
               rerun.string()},
              rerun / "rerun.log") == 0);
  CHECK(read_summary(rerun)["final_accuracy"] == summary["final_accuracy"]);

  // A resume with another learning rate (or without the run's --set) is refused, naming the keys.
  std::vector<std::string> changed = command("simulate", out, settings);
  changed.insert(changed.end(), {"--set", "train.learning_rate=0.5", "--set", "federation.rounds=3",
                                 "--resume", out.string()});
  REQUIRE(run(changed, out / "changed.log") == 2);
  CHECK_THAT(read_file(out / "changed.log"),
             Contains("train.learning_rate (0.02 in the run, 0.5 now)") &&
                 !Contains("federation.rounds ("));
  std::vector<std::string> bare = {LORAFED_EXECUTABLE, "simulate", kConfig, "--resume",
                                   out.string()};
  REQUIRE(run(bare, out / "bare.log") == 2);
  CHECK_THAT(read_file(out / "bare.log"),
             Contains("train.learning_rate (0.02 in the run, 0.01 now)") &&
                 Contains("transport.endpoint"));

  // More rounds, same configuration otherwise: the run goes on.
  std::vector<std::string> more = command("simulate", out, settings);
  more.insert(more.end(), {"--set", "federation.rounds=3", "--resume", out.string()});
  REQUIRE(run(more, out / "more.log") == 0);
  CHECK(read_summary(out)["rounds"] == 3);
  CHECK_THAT(read_file(out / "resolved-config.toml"), Contains("rounds = 3"));
}

TEST_CASE("a fresh run in an earlier run's folder replaces its summary, checkpoint and exports",
          "[records]") {
  const fs::path out = fresh_dir("records-earlier-run");
  // What an earlier run left (a crash would leave its summary and checkpoint
  // beside this run's metrics), and a file of the user's own.
  write_file(out / "resolved-config.toml", "# an earlier run's\n");
  fs::create_directories(out / "checkpoint");
  fs::create_directories(out / "peft" / "global");
  write_file(out / "summary.json", R"({"final_accuracy": 0.99})");
  write_file(out / "checkpoint" / "checkpoint.json", "{}");
  write_file(out / "peft" / "global" / "earlier.safetensors", "x");
  write_file(out / "generations.jsonl", "{}\n");
  write_file(out / "notes.txt", "mine");

  // Checkpoints off: nothing of this run's would replace the earlier one's.
  REQUIRE(run(command("simulate", out,
                      {"--set", "federation.rounds=1", "--set", "transport.name=inproc", "--set",
                       "checkpoint.enabled=false"}),
              out / "fresh.log") == 0);
  CHECK_THAT(read_file(out / "fresh.log"), Contains("held an earlier run"));
  CHECK_FALSE(fs::exists(out / "checkpoint"));
  CHECK_FALSE(fs::exists(out / "generations.jsonl"));  // mlp writes none
  CHECK_FALSE(fs::exists(out / "peft" / "global" / "earlier.safetensors"));
  CHECK(fs::exists(out / "peft" / "global" / "adapter_model.safetensors"));
  CHECK(read_summary(out).contains("settings"));
  CHECK(read_file(out / "notes.txt") == "mine");

  // A folder no run wrote to: a `checkpoint/` there is the user's, and stays.
  const fs::path own = fresh_dir("records-own-folder");
  fs::create_directories(own / "checkpoint");
  write_file(own / "checkpoint" / "model.pt", "mine");
  REQUIRE(run(command("simulate", own,
                      {"--set", "federation.rounds=1", "--set", "transport.name=inproc", "--set",
                       "checkpoint.enabled=false"}),
              own / "fresh.log") == 0);
  CHECK_THAT(read_file(own / "fresh.log"), !Contains("held an earlier run"));
  CHECK(read_file(own / "checkpoint" / "model.pt") == "mine");
}
