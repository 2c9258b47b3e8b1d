#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "lorafed/error.hpp"
#include "src/server/checkpoint.hpp"

using Catch::Matchers::Contains;
using lorafed::Checkpoint;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("lorafed-checkpoint-test-" + name);
  fs::remove_all(dir);
  return dir;
}

const nlohmann::json kIdentity = {{"strategy", "fedhl"}, {"seed", 7}, {"alpha", 16.0}};

}  // namespace

TEST_CASE("a checkpoint reads back as written, and only the newest state file stays",
          "[checkpoint]") {
  const fs::path dir = fresh_dir("roundtrip");
  for (int round = 1; round <= 3; ++round) {
    Checkpoint{round, {{"w", at::full({2, 3}, round)}}, kIdentity, {{"bytes_up", 10 * round}}}
        .write(dir);
  }
  const Checkpoint read = Checkpoint::read(dir, kIdentity);
  CHECK(read.round == 3);
  CHECK(at::equal(read.state.at("w"), at::full({2, 3}, 3.0)));
  CHECK(read.progress["bytes_up"] == 30);
  CHECK(fs::exists(dir / "state-3.safetensors"));
  CHECK_FALSE(fs::exists(dir / "state-1.safetensors"));
  CHECK_FALSE(fs::exists(dir / "state-2.safetensors"));
}

TEST_CASE("a checkpoint of another configuration, a missing one and a damaged one are refused",
          "[checkpoint]") {
  const fs::path dir = fresh_dir("refusals");
  CHECK_THROWS_AS(Checkpoint::read(dir, kIdentity), lorafed::ConfigError);

  Checkpoint{2, {{"w", at::ones({2})}}, kIdentity, {}}.write(dir);
  nlohmann::json other = kIdentity;
  other["seed"] = 8;
  CHECK_THROWS_WITH(Checkpoint::read(dir, other), Contains("seed = 7") && Contains("has 8"));

  std::ofstream(dir / "checkpoint.json") << "{\"round\": 2}";
  CHECK_THROWS_AS(Checkpoint::read(dir, kIdentity), lorafed::FormatError);
  std::ofstream(dir / "checkpoint.json") << "not json";
  CHECK_THROWS_AS(Checkpoint::read(dir, kIdentity), lorafed::FormatError);
  fs::remove_all(dir);
}
