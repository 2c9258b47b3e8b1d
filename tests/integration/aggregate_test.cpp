// `lorafed aggregate`: a strategy's server step offline, checked against the
// equations computed here (docs/algorithms.md §FlexLoRA, §FedHL).
#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <fstream>

#include "integration/process.hpp"
#include "lorafed/safetensors.hpp"

using lorafed::test::Process;
namespace fs = std::filesystem;

namespace {

const fs::path kDir = fs::path(LORAFED_TEST_WORK_DIR) / "aggregate";

struct Factors {
  at::Tensor a, b;
  double scale;
};

Factors write_client(const std::string& name, std::int64_t rank) {
  Factors f{at::randn({rank, 6}), at::randn({5, rank}), 8.0 / static_cast<double>(rank)};
  lorafed::save_safetensors(kDir / (name + ".safetensors"), {{"q.lora_A", f.a}, {"q.lora_B", f.b}},
                            {{"lora_alpha", "8"}});
  return f;
}

int run_aggregate(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {LORAFED_EXECUTABLE, "aggregate"};
  argv.insert(argv.end(), args.begin(), args.end());
  Process process(argv, kDir / "aggregate.log");
  const auto code = process.wait(std::chrono::seconds(60));
  INFO(lorafed::test::read_file(kDir / "aggregate.log"));
  REQUIRE(code.has_value());
  return *code;
}

at::Tensor truncation(const at::Tensor& m, std::int64_t rank) {
  auto [u, s, vh] = at::linalg_svd(m.to(at::kDouble), false);
  return at::matmul(u.narrow(1, 0, rank) * s.narrow(0, 0, rank), vh.narrow(0, 0, rank))
      .to(at::kFloat);
}

}  // namespace

TEST_CASE("lorafed aggregate reproduces a flexlora and a fedhl step from files", "[aggregate]") {
  fs::remove_all(kDir);
  fs::create_directories(kDir);
  at::manual_seed(12);
  const Factors c0 = write_client("c0", 2);
  const Factors c1 = write_client("c1", 4);
  const std::string f0 = (kDir / "c0.safetensors").string();
  const std::string f1 = (kDir / "c1.safetensors").string();

  SECTION("flexlora: ΔW = Σ p_i s_i B_i A_i, p ∝ examples") {
    const std::string out = (kDir / "flexlora.safetensors").string();
    REQUIRE(run_aggregate({"--strategy", "flexlora", "--client", f0 + ":100", "--client",
                           f1 + ":300", "--out", out}) == 0);
    const at::Tensor expected =
        0.25 * c0.scale * at::matmul(c0.b, c0.a) + 0.75 * c1.scale * at::matmul(c1.b, c1.a);
    CHECK(at::allclose(lorafed::load_safetensors(out).tensors.at("q.delta"), expected, 1e-4, 1e-4));
  }

  SECTION("fedhl from a saved state: W + Σ p_i (s_i B_i A_i − W_{r_i})") {
    const at::Tensor w = at::randn({5, 6});
    const std::string state = (kDir / "state.safetensors").string();
    lorafed::save_safetensors(state, {{"q.global", w}});
    {
      std::ofstream config(kDir / "fedhl.toml");
      config << "[strategy]\nname = \"fedhl\"\nweighting = \"uniform\"\n";
    }
    const std::string out = (kDir / "fedhl.safetensors").string();
    REQUIRE(run_aggregate({"--config", (kDir / "fedhl.toml").string(), "--state", state, "--client",
                           f0, "--client", f1, "--out", out}) == 0);
    const at::Tensor expected = w + 0.5 * (c0.scale * at::matmul(c0.b, c0.a) - truncation(w, 2)) +
                                0.5 * (c1.scale * at::matmul(c1.b, c1.a) - truncation(w, 4));
    CHECK(
        at::allclose(lorafed::load_safetensors(out).tensors.at("q.global"), expected, 1e-4, 1e-4));
  }

  SECTION("a client file whose layers do not match is refused") {
    lorafed::save_safetensors(kDir / "odd.safetensors",
                              {{"k.lora_A", at::randn({2, 6})}, {"k.lora_B", at::randn({5, 2})}});
    CHECK(run_aggregate({"--strategy", "flexlora", "--client", f0, "--client",
                         (kDir / "odd.safetensors").string(), "--out",
                         (kDir / "x.safetensors").string()}) != 0);
    CHECK_THAT(lorafed::test::read_file(kDir / "aggregate.log"),
               Catch::Matchers::Contains("odd.safetensors"));
  }
}
