#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>

#include "lorafed/config.hpp"
#include "lorafed/error.hpp"
#include "src/federation_config.hpp"

using Catch::Matchers::Contains;
using lorafed::ConfigError;
using lorafed::ConfigTable;

TEST_CASE("typed values are read, with ints accepted as floats", "[config]") {
  const auto config = ConfigTable::parse_string(R"(
[strategy]
name = "fedhl"
epsilon = 1
ranks = [2, 4]
tags = ["a", "b"]
verbose = true
)",
                                                "test.toml");
  const ConfigTable strategy = config.section("strategy");
  CHECK(strategy.require<std::string>("name") == "fedhl");
  CHECK(strategy.get<double>("epsilon", 0.5) == 1.0);
  CHECK(strategy.get<std::vector<std::int64_t>>("ranks", {}) == std::vector<std::int64_t>{2, 4});
  CHECK(strategy.get<std::vector<std::string>>("tags", {}) == std::vector<std::string>{"a", "b"});
  CHECK(strategy.get<bool>("verbose", false));
  CHECK(strategy.get<std::int64_t>("absent", 7) == 7);
}

TEST_CASE("a value of the wrong type names the key, the table, the file and both types",
          "[config]") {
  const auto config =
      ConfigTable::parse_string("[train]\nlearning_rate = \"fast\"\n", "examples/x.toml");
  CHECK_THROWS_MATCHES(
      config.section("train").get<double>("learning_rate", 0.1), ConfigError,
      Catch::Matchers::Message(
          "[train] key 'learning_rate' in examples/x.toml must be a float, got a string"));
}

TEST_CASE("a wrong element type in an array names its position", "[config]") {
  const auto config = ConfigTable::parse_string("[lora]\nranks = [2, \"four\"]\n", "r.toml");
  CHECK_THROWS_WITH(config.section("lora").get<std::vector<std::int64_t>>("ranks", {}),
                    Contains("[lora] key 'ranks' in r.toml") && Contains("element 1 is a string"));
}

TEST_CASE("a missing required key is an error naming it", "[config]") {
  const auto config = ConfigTable::parse_string("[model]\n", "m.toml");
  CHECK_THROWS_WITH(config.section("model").require<std::string>("name"),
                    Contains("[model] key 'name' in m.toml is required"));
}

TEST_CASE("keys nobody read are reported, including in sub-tables", "[config]") {
  const auto config = ConfigTable::parse_string(R"(
[train]
learning_rate = 0.1
learnig_rate = 0.2
[model]
name = "mlp"
[model.extra]
depth = 3
[unknown_section]
x = 1
)",
                                                "u.toml");
  config.section("train").get<double>("learning_rate", 0.0);
  const ConfigTable model = config.section("model");
  model.require<std::string>("name");
  model.section("extra");  // read the table, but not its key
  try {
    config.reject_unknown_keys();
    FAIL("unknown keys were accepted");
  } catch (const ConfigError& error) {
    const std::string message = error.what();
    CHECK_THAT(message, Contains("'train.learnig_rate'"));
    CHECK_THAT(message, Contains("'model.extra.depth'"));
    CHECK_THAT(message, Contains("'unknown_section'"));
    CHECK_THAT(message, Contains("u.toml"));
    CHECK_THAT(message, !Contains("'train.learning_rate'"));
  }
}

TEST_CASE("a syntax error names the file and line", "[config]") {
  CHECK_THROWS_WITH(ConfigTable::parse_string("[a]\nb = = 1\n", "bad.toml"),
                    Contains("bad.toml:2"));
}

TEST_CASE("a missing file is an error naming it", "[config]") {
  CHECK_THROWS_WITH(ConfigTable::parse_file("/nonexistent/x.toml"),
                    Contains("/nonexistent/x.toml"));
}

TEST_CASE("set_from_text overrides and creates keys, bare words as strings", "[config]") {
  auto config = ConfigTable::parse_string("[transport]\nname = \"zmq\"\n", "o.toml");
  config.set_from_text("transport.name", "inproc");
  config.set_from_text("federation.rounds", "12");
  config.set_from_text("lora.ranks", "[2, 4]");
  CHECK(config.section("transport").require<std::string>("name") == "inproc");
  CHECK(config.section("federation").require<std::int64_t>("rounds") == 12);
  CHECK(config.section("lora").require<std::vector<std::int64_t>>("ranks") ==
        std::vector<std::int64_t>{2, 4});
}

TEST_CASE("a section that is not a table is an error", "[config]") {
  const auto config = ConfigTable::parse_string("model = 3\n", "s.toml");
  CHECK_THROWS_WITH(config.section("model"), Contains("must be a table"));
}

// --- FederationConfig: the framework's tables, their ranges and the ranks ---

namespace {

// A minimal federation file; `overrides` as `--set` gives them. One file per
// process: ctest runs test cases as processes two at a time.
lorafed::FederationConfig load_federation(const std::vector<std::string>& overrides) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("lorafed-test-federation-" + std::to_string(::getpid()) + ".toml");
  std::ofstream(path) << "[federation]\nnum_clients = 3\n[strategy]\nname = \"fedavg\"\n"
                         "[model]\nname = \"mlp\"\n";
  return lorafed::FederationConfig::load(path, overrides);
}

}  // namespace

TEST_CASE("numbers out of range are refused at load, naming the key, the value and the range",
          "[config]") {
  struct Case {
    std::string assignment;  // --set
    std::string key;         // as the message names it
    std::string range;
    std::string value;
  };
  const std::string seconds = "must be a number of seconds in [0.001, 1e+09]";
  const Case test = GENERATE_COPY(values<Case>({
      {"federation.rounds=4294967296", "[federation] key 'rounds'", "from 1 to 1000000000",
       "got 4294967296"},
      {"federation.rounds=0", "[federation] key 'rounds'", "from 1 to 1000000000", "got 0"},
      {"federation.round_timeout_s=inf", "[federation] key 'round_timeout_s'", seconds, "got inf"},
      {"federation.round_timeout_s=1e300", "[federation] key 'round_timeout_s'", seconds,
       "got 1e+300"},
      {"federation.registration_timeout_s=1e300", "[federation] key 'registration_timeout_s'",
       seconds, "got 1e+300"},
      {"broker.heartbeat_timeout_s=1e20", "[broker] key 'heartbeat_timeout_s'", seconds,
       "got 1e+20"},
      {"broker.heartbeat_interval_s=nan", "[broker] key 'heartbeat_interval_s'", seconds,
       "got nan"},
      {"client.server_silence_timeout_s=-1", "[client] key 'server_silence_timeout_s'", seconds,
       "got -1"},
      {"client.reconnect_backoff_s=0.0001", "[client] key 'reconnect_backoff_s'", seconds,
       "got 0.0001"},
      {"federation.num_clients=10000000000", "[federation] key 'num_clients'", "from 1 to 1000000",
       "got 10000000000"},
      {"federation.min_fit_clients=4", "[federation] key 'min_fit_clients'", "from 1 to 3",
       "got 4"},
      {"federation.min_fit_results=0", "[federation] key 'min_fit_results'", "from 1 to 3",
       "got 0"},
      {"federation.fraction_fit=nan", "[federation] key 'fraction_fit'", "in (0, 1]", "got nan"},
      {"federation.evaluate_every=4294967296", "[federation] key 'evaluate_every'",
       "from 0 to 2147483647", "got 4294967296"},
      {"lora.alpha=inf", "[lora] key 'alpha'", "in (0, 1e+06]", "got inf"},
      {"train.learning_rate=inf", "[train] key 'learning_rate'", "in (0, inf)", "got inf"},
      {"train.weight_decay=inf", "[train] key 'weight_decay'", "in [0, inf)", "got inf"},
      {"train.max_grad_norm=nan", "[train] key 'max_grad_norm'", "in [0, inf)", "got nan"},
      {"train.momentum=1", "[train] key 'momentum'", "in [0, 1)", "got 1"},
      {"train.local_epochs=10000000000", "[train] key 'local_epochs'", "from 0 to 1000000",
       "got 10000000000"},
      {"train.batch_size=4294967296", "[train] key 'batch_size'", "from 1 to 2147483647",
       "got 4294967296"},
      {"simulation.threads=100000", "[simulation] key 'threads'", "from 1 to 1024", "got 100000"},
      {"client.state_memory_mb=-1", "[client] key 'state_memory_mb'", "from 0 to 1073741824",
       "got -1"},
      {"client.models=\"lazy\"", "[client] key 'models'", "\"resident\" or \"on_demand\"",
       "got \"lazy\""},
      {"server.threads=-1", "[server] key 'threads'", "from 0 to 1024", "got -1"},
      {"transport.max_frame_bytes=1099511627776", "[transport] key 'max_frame_bytes'",
       "from 1024 to 1073741824", "got 1099511627776"},
      {"transport.max_message_bytes=0", "[transport] key 'max_message_bytes'", "from 1 to",
       "got 0"},
  }));
  INFO(test.assignment);
  CHECK_THROWS_MATCHES(load_federation({test.assignment}), ConfigError,
                       Catch::Matchers::Predicate<ConfigError>([&](const ConfigError& error) {
                         const std::string message = error.what();
                         UNSCOPED_INFO(message);
                         // Each value came with --set, and the message says so.
                         return message.find(test.key) != std::string::npos &&
                                message.find("in --set") != std::string::npos &&
                                message.find(test.range) != std::string::npos &&
                                message.find(test.value) != std::string::npos;
                       }));
}

TEST_CASE("a normal rank distribution needs a finite mean and deviation", "[config]") {
  const std::vector<std::string> normal = {"lora.rank_distribution=normal", "lora.rank_set=[2, 4]"};
  auto with = [&](const std::string& assignment) {
    auto overrides = normal;
    overrides.push_back(assignment);
    return overrides;
  };
  CHECK_THROWS_WITH(load_federation(with("lora.rank_mean=nan")),
                    Contains("'rank_mean'") && Contains("got nan"));
  auto overrides = with("lora.rank_mean=3");
  overrides.push_back("lora.rank_std=inf");
  CHECK_THROWS_WITH(load_federation(overrides), Contains("'rank_std'") && Contains("got inf"));
}

TEST_CASE("the ends of each range load, and durations convert to milliseconds safely", "[config]") {
  using std::chrono::milliseconds;
  const auto config =
      load_federation({"federation.rounds=1000000000", "federation.round_timeout_s=1e9",
                       "federation.evaluate_every=0", "broker.heartbeat_interval_s=0.001",
                       "broker.heartbeat_timeout_s=0.002", "federation.fraction_fit=1"});
  CHECK(config.rounds == 1000000000);
  CHECK(config.round_timeout_s == 1e9);
  // [server] threads: one per core by default and for 0, anything else itself.
  const int cores = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  CHECK(config.server_thread_count() == cores);
  CHECK(load_federation({"server.threads=0"}).server_thread_count() == cores);
  CHECK(load_federation({"server.threads=1"}).server_thread_count() == 1);
  CHECK(load_federation({"server.threads=3"}).server_thread_count() == 3);
  CHECK(config.heartbeat_interval() == milliseconds(1));
  CHECK(config.heartbeat_timeout() == milliseconds(2));
  CHECK(lorafed::FederationConfig::milliseconds(1e9) == milliseconds(1'000'000'000'000));
  CHECK(lorafed::FederationConfig::milliseconds(0.0015) == milliseconds(2));  // rounded up
  // Anything outside the range is an error, not an overflowed or zero duration.
  for (const double seconds : {std::numeric_limits<double>::infinity(), 1e20, 0.0, -1.0,
                               std::numeric_limits<double>::quiet_NaN()}) {
    CHECK_THROWS_AS(lorafed::FederationConfig::milliseconds(seconds), ConfigError);
  }
}

TEST_CASE("a rank larger than every LoRA layer of the model is refused, naming the widest",
          "[config]") {
  lorafed::ModelSpec spec;
  spec.model_id = "mlp-test";
  spec.targets = {{"fc1", 784, 128}, {"head", 64, 10}};
  CHECK(lorafed::max_useful_rank(spec) == 128);
  SECTION("the server's model checks every client's rank") {
    const auto config = load_federation({"lora.ranks=[4, 200, 10]"});
    CHECK_THROWS_MATCHES(
        lorafed::check_ranks_fit(config, spec, -1), ConfigError,
        Catch::Matchers::Message(
            "[lora] in " + config.source.string() +
            ": client-1 has LoRA rank 200, more than any LoRA layer of model 'mlp-test' takes: "
            "the widest, 'fc1' (out 128 × in 784), takes at most min(in, out) = 128; lower the "
            "rank"));
  }
  SECTION("a client's model checks its own rank") {
    const auto config = load_federation({"lora.ranks=[4, 129, 128]"});
    CHECK_THROWS_WITH(lorafed::check_ranks_fit(config, spec, 1),
                      Contains("client-1 has LoRA rank 129") && Contains("'fc1'"));
    CHECK_NOTHROW(lorafed::check_ranks_fit(config, spec, 0));
    CHECK_NOTHROW(lorafed::check_ranks_fit(config, spec, 2));  // min(in, out) itself fits
  }
  SECTION("a rank above a narrower layer trains the wider ones") {
    // 'head' takes rank 10: its update has at most that rank (said once, not refused).
    CHECK_NOTHROW(lorafed::check_ranks_fit(load_federation({"lora.ranks=[16, 32, 4]"}), spec, -1));
  }
  SECTION("a model without LoRA layers takes any rank") {
    CHECK_NOTHROW(lorafed::check_ranks_fit(load_federation({}), lorafed::ModelSpec{}, -1));
  }
}

TEST_CASE("a key set with --set is reported as coming from --set, not from the file", "[config]") {
  auto config = ConfigTable::parse_string("[train]\nlearning_rate = 0.1\n", "examples/x.toml");
  config.set_from_text("train.learnig_rate", "0.2");
  config.set_from_text("train.batch_size", "\"large\"");
  config.section("train").get<double>("learning_rate", 0.0);
  CHECK_THROWS_WITH(config.section("train").get<std::int64_t>("batch_size", 32),
                    Contains("[train] key 'batch_size' in --set must be an integer"));
  CHECK_THROWS_WITH(config.reject_unknown_keys(),
                    Contains("unknown configuration key 'train.learnig_rate' in --set") &&
                        !Contains("examples/x.toml"));
}

TEST_CASE("a table nobody reads is reported as coming from --set when its keys did", "[config]") {
  auto config = ConfigTable::parse_string("[train]\nlearning_rate = 0.1\n", "examples/x.toml");
  config.set_from_text("transprt.name", "\"zmq\"");
  config.set_from_text("transprt-x.name", "\"zmq\"");  // sorts between 'transprt' and its keys
  config.section("train").get<double>("learning_rate", 0.0);
  CHECK_THROWS_WITH(config.reject_unknown_keys(),
                    Contains("unknown configuration keys 'transprt', 'transprt-x' in --set") &&
                        !Contains("examples/x.toml"));
  // One from the file, one from --set: each said where it came from.
  auto mixed = ConfigTable::parse_string("[transprt]\nname = \"zmq\"\n", "examples/x.toml");
  mixed.set_from_text("strategy_x.name", "\"fedavg\"");
  CHECK_THROWS_WITH(mixed.reject_unknown_keys(),
                    Contains("unknown configuration key 'transprt' in examples/x.toml; "
                             "unknown key 'strategy_x' in --set"));
}
