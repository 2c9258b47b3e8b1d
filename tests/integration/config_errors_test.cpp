// What `lorafed` does with input it must refuse: configuration values out of
// range, ranks no layer takes, command-line errors, bad `aggregate` files,
// and a full disk. Each run stops within seconds with an exit code from
// docs/configuration.md §Exit codes and a message naming what is wrong.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <fstream>

#include "integration/federation_runs.hpp"
#include "integration/process.hpp"
#include "lorafed/safetensors.hpp"

using namespace lorafed::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

struct Outcome {
  int code;
  std::string log;
};

// Runs `lorafed ARGS...`, which must end within `limit`.
Outcome run_lorafed(const std::vector<std::string>& args, const fs::path& log,
                    std::chrono::seconds limit = std::chrono::seconds(60)) {
  std::vector<std::string> argv = {LORAFED_EXECUTABLE};
  argv.insert(argv.end(), args.begin(), args.end());
  Process process(argv, log, kEnv);
  const auto code = process.wait(limit);
  const std::string text = read_file(log);
  INFO(text);
  REQUIRE(code.has_value());
  return {*code, text};
}

// `lorafed simulate tiny-fmnist.toml` over inproc (no ports), with `extra`.
Outcome simulate(const std::string& name, std::vector<std::string> extra) {
  const fs::path out = fresh_dir("config-errors-" + name);
  extra.insert(extra.end(), {"--set", "transport.name=inproc"});
  std::vector<std::string> argv = command("simulate", out, extra);
  argv.erase(argv.begin());  // run_lorafed adds the executable
  return run_lorafed(argv, out / "simulate.log");
}

// A safetensors file written byte by byte (the header need not make sense).
void write_raw(const fs::path& path, const std::string& header) {
  std::ofstream out(path, std::ios::binary);
  const std::uint64_t size = header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((size >> (8 * i)) & 0xff));
  out << header;
}

}  // namespace

TEST_CASE("configuration values that overflow exit 2 at load, naming the key and the value",
          "[config-errors]") {
  const auto [assignment, key, value] = GENERATE(table<std::string, std::string, std::string>({
      {"broker.heartbeat_timeout_s=1e20", "[broker] key 'heartbeat_timeout_s'", "1e+20"},
      {"federation.round_timeout_s=inf", "[federation] key 'round_timeout_s'", "inf"},
      {"federation.round_timeout_s=1e300", "[federation] key 'round_timeout_s'", "1e+300"},
      {"federation.rounds=4294967296", "[federation] key 'rounds'", "4294967296"},
      {"federation.registration_timeout_s=1e300", "[federation] key 'registration_timeout_s'",
       "1e+300"},
  }));
  const auto outcome = simulate("overflow", {"--set", assignment});
  INFO(outcome.log);
  CHECK(outcome.code == 2);
  // The value came with --set, and the message says so.
  CHECK_THAT(outcome.log, Contains("configuration error") && Contains(key) &&
                              Contains("got " + value) && Contains("in --set"));
}

TEST_CASE("a LoRA rank larger than every layer of the model exits 2, naming the widest",
          "[config-errors]") {
  SECTION("the server's model (mlp: its widest LoRA layer is 784 → 128)") {
    const auto outcome = simulate("rank", {"--set", "lora.rank=200"});
    CHECK(outcome.code == 2);
    CHECK_THAT(outcome.log, Contains("LoRA rank 200") && Contains("(out 128 × in 784)") &&
                                Contains("at most min(in, out) = 128"));
  }
  SECTION("a client process's own model") {
    const fs::path out = fresh_dir("config-errors-client-rank");
    auto argv = command("client", out, {"--set", "lora.ranks=[4, 4, 300]", "--id", "2"});
    argv.erase(argv.begin());
    const auto outcome = run_lorafed(argv, out / "client.log");
    CHECK(outcome.code == 2);
    CHECK_THAT(outcome.log, Contains("client-2 has LoRA rank 300"));
  }
  SECTION("personalised: cnnzoo's clients, whose adapter sits on fc3 (500 → 10)") {
    const fs::path out = fresh_dir("config-errors-cnnzoo");
    const auto outcome =
        run_lorafed({"simulate", std::string(LORAFED_TEST_CONFIG_DIR) + "/tiny-pfedlora.toml",
                     "--out", out.string(), "--set", "lora.rank=11"},
                    out / "simulate.log");
    CHECK(outcome.code == 2);
    CHECK_THAT(outcome.log, Contains("LoRA rank 11") && Contains("'fc3' (out 10 × in 500)"));
  }
}

TEST_CASE("command-line errors exit 2, and --help and --version exit 0", "[config-errors]") {
  const fs::path out = fresh_dir("config-errors-cli");
  const auto [args, expected] = GENERATE(table<std::vector<std::string>, int>({
      {std::vector<std::string>{}, 2},
      {{"no-such-command"}, 2},
      {{"simulate"}, 2},
      {{"simulate", "/nonexistent/federation.toml"}, 2},
      {{"simulate", kConfig, "--no-such-option"}, 2},
      {{"client", kConfig, "--id", "abc"}, 2},
      {{"--help"}, 0},
      {{"simulate", "--help"}, 0},
      {{"--version"}, 0},
  }));
  const auto outcome = run_lorafed(args, out / "cli.log");
  INFO(outcome.log);
  CHECK(outcome.code == expected);
}

TEST_CASE("a broker refuses a key nobody reads, as the server and clients do", "[config-errors]") {
  const fs::path out = fresh_dir("config-errors-broker-key");
  const auto [assignment, named] = GENERATE(table<std::string, std::string>({
      {"broker.heartbeat_intervall_s=1",
       "unknown configuration key 'broker.heartbeat_intervall_s'"},
      {"transprt.name=\"zmq\"", "unknown configuration key 'transprt' in --set"},
      {"heartbeat=1", "unknown configuration key 'heartbeat' in --set"},
  }));
  std::vector<std::string> args = command("broker", out, {"--set", assignment});
  args.erase(args.begin());  // run_lorafed adds the executable
  const auto outcome = run_lorafed(args, out / "broker.log", std::chrono::seconds(30));
  CHECK(outcome.code == 2);  // before: the key was ignored and the broker ran
  CHECK_THAT(outcome.log, Contains(named));
}

TEST_CASE("lorafed aggregate names the file and the value it cannot use", "[config-errors]") {
  const fs::path dir = fresh_dir("config-errors-aggregate");
  const std::string good = (dir / "good.safetensors").string();
  lorafed::save_safetensors(good,
                            {{"q.lora_A", at::randn({2, 6})}, {"q.lora_B", at::randn({5, 2})}},
                            {{"lora_alpha", "8"}});
  const std::string out = (dir / "state.safetensors").string();
  auto aggregate = [&](const std::vector<std::string>& clients) {
    std::vector<std::string> args = {"aggregate", "--strategy", "flexlora", "--out", out};
    for (const std::string& client : clients) args.insert(args.end(), {"--client", client});
    return run_lorafed(args, dir / "aggregate.log");
  };

  SECTION("a lora_alpha that is not a number") {
    const std::string bad = (dir / "alpha.safetensors").string();
    lorafed::save_safetensors(bad,
                              {{"q.lora_A", at::randn({2, 6})}, {"q.lora_B", at::randn({5, 2})}},
                              {{"lora_alpha", "eight"}});
    const auto outcome = aggregate({good, bad});
    CHECK(outcome.code == 1);
    CHECK_THAT(outcome.log,
               Contains(bad) && Contains("lora_alpha = \"eight\"") && !Contains("error: stod"));
  }
  SECTION("an example count that overflows") {
    const auto outcome = aggregate({good + ":99999999999999999999"});
    CHECK(outcome.code == 2);
    CHECK_THAT(outcome.log, Contains("--client " + good + ":99999999999999999999") &&
                                Contains("99999999999999999999") && !Contains("error: stoll"));
  }
  SECTION("a layer without lora_B") {
    const std::string bad = (dir / "no-b.safetensors").string();
    lorafed::save_safetensors(bad, {{"q.lora_A", at::randn({2, 6})}}, {{"lora_alpha", "8"}});
    const auto outcome = aggregate({bad, good});
    CHECK(outcome.code == 1);
    CHECK_THAT(outcome.log, Contains(bad) && Contains("'q.lora_B'"));
  }
  SECTION("a shape whose size overflows in the safetensors header") {
    const std::string bad = (dir / "overflow.safetensors").string();
    write_raw(
        bad,
        R"({"q.lora_A":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})");
    const auto outcome = aggregate({bad});
    CHECK(outcome.code == 1);
    CHECK_THAT(outcome.log, Contains(bad) && Contains("overflows 64 bits") &&
                                !Contains("Exception raised from"));
  }
}

TEST_CASE("a full disk stops a run at its first record, naming metrics.jsonl", "[config-errors]") {
  // Checkpoints off: metrics.jsonl is the only thing written every round.
  const fs::path out = fresh_dir("config-errors-full-disk");
  fs::create_symlink("/dev/full", out / "metrics.jsonl");
  std::vector<std::string> argv = command(
      "simulate", out, {"--set", "transport.name=inproc", "--set", "checkpoint.enabled=false"});
  argv.erase(argv.begin());
  const auto outcome = run_lorafed(argv, out / "simulate.log", std::chrono::seconds(120));
  CHECK(outcome.code == 1);
  CHECK_THAT(outcome.log, Contains("cannot write a record to '" + (out / "metrics.jsonl").string() +
                                   "': No space left on device"));
  // The base model's record (round 0) is the first: no round was trained.
  CHECK_THAT(outcome.log, !Contains("round 1/"));
  CHECK_FALSE(fs::exists(out / "summary.json"));
}
