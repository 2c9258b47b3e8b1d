#include <catch2/catch.hpp>

#include "lorafed/config.hpp"
#include "lorafed/error.hpp"

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
