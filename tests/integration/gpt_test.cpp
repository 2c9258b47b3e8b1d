// Federated instruction tuning with the `gpt` backend through `lorafed
// simulate`: a base pretrained on Debian's license texts, then FedHL over
// clients of different ranks, each holding one task type.
// Before Catch: LibTorch's headers define a CHECK macro of their own.
#include "lorafed/safetensors.hpp"
// clang-format off
#include <catch2/catch.hpp>

#include <set>
#include <sstream>
#include <vector>
// clang-format on
#include <nlohmann/json.hpp>

#include "integration/process.hpp"

using lorafed::test::Process;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// An empty run directory `name` under the integration tests' work folder.
fs::path fresh_run_directory(const std::string& name) {
  const fs::path out = fs::path(LORAFED_TEST_WORK_DIR) / name;
  fs::remove_all(out);
  fs::create_directories(out);
  return out;
}

}  // namespace

TEST_CASE("federated fine-tuning of a gpt base improves exact match on held-out problems",
          "[gpt]") {
  const fs::path work = LORAFED_TEST_WORK_DIR;
  const fs::path out = fresh_run_directory("gpt");
  Process run({LORAFED_EXECUTABLE, "simulate",
               std::string(LORAFED_TEST_CONFIG_DIR) + "/tiny-gpt.toml", "--out", out.string()},
              out / "simulate.log", {{"LORAFED_CACHE_DIR", (work / "cache").string()}});
  const auto code = run.wait(std::chrono::seconds(400));
  INFO(lorafed::test::read_file(out / "simulate.log"));
  REQUIRE(code == 0);
  const json summary = json::parse(lorafed::test::read_file(out / "summary.json"));
  INFO(summary.dump(2));
  const double base = summary["base_exact_match"].get<double>();
  const double final = summary["final_exact_match"].get<double>();
  // The base has never seen a word problem and answers none. A base
  // pretrained for seconds learns the answers' form and distribution in a
  // few rounds (the most common answer of 0..10 is 14% of them), not the
  // arithmetic, which needs the examples' pretrained base (docs/results.md).
  CHECK(base < 0.02);
  CHECK(final > base + 0.1);
  CHECK(summary["final_loss"].get<double>() < summary["base_loss"].get<double>() / 2);
  // Every client, at its own rank on its own task, answers some problems.
  CHECK(summary["final_federated_exact_match"].get<double>() > 0.1);
  // The global adapter exported for PEFT names GPT2LMHeadModel's modules.
  const fs::path peft = out / "peft" / "global";
  const auto tensors = lorafed::load_safetensors(peft / "adapter_model.safetensors").tensors;
  CHECK(tensors.contains("base_model.model.transformer.h.1.mlp.c_proj.lora_A.weight"));
  CHECK(tensors.contains("base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"));
  const json config = json::parse(lorafed::test::read_file(peft / "adapter_config.json"));
  // Every adapted module by its full path, and nothing else.
  std::set<std::string> modules;
  for (const auto& [name, tensor] : tensors) {
    if (name.ends_with(".lora_A.weight")) {
      modules.insert(name.substr(std::string("base_model.model.").size(),
                                 name.size() - std::string("base_model.model.").size() -
                                     std::string(".lora_A.weight").size()));
    }
  }
  CHECK(config["target_modules"].get<std::set<std::string>>() == modules);
  CHECK(modules.contains("transformer.h.1.mlp.c_proj"));
  // It names the run's base, a GPT2LMHeadModel folder, by absolute path, as
  // a causal LM whose projections are Conv1D.
  CHECK(config["base_model_name_or_path"] ==
        fs::absolute(out / "peft" / "base").lexically_normal().string());
  CHECK(config["task_type"] == "CAUSAL_LM");
  CHECK(config["fan_in_fan_out"] == true);
  CHECK(fs::exists(out / "peft" / "base" / "config.json"));
  CHECK(fs::exists(out / "peft" / "base" / "model.safetensors"));
  CHECK(summary["peft_base"] == "peft/base");
  // Exported at the largest client rank, with what that leaves out recorded.
  CHECK(config["r"] == 8);
  const json& global = summary["peft"][0];
  CHECK(global["folder"] == "peft/global");
  CHECK(global["rank"] == 8);
  CHECK(global["relative_truncation_error"].get<double>() >= 0.0);
  CHECK(global["relative_truncation_error"].get<double>() < 1.0);
}

TEST_CASE("a gsm8k-format file made by lorafed-word-problems tunes a gpt base end to end",
          "[gpt][instruct]") {
  const fs::path work = LORAFED_TEST_WORK_DIR;
  const fs::path out = fresh_run_directory("gpt-gsm8k");
  const fs::path data = out / "gsm8k.jsonl";
  Process make({LORAFED_WORD_PROBLEMS, "--format", "gsm8k", "--tasks", "add,subtract", "--per-task",
                "60", "--max-operand", "5", "--out", data.string()},
               out / "make.log");
  REQUIRE(make.wait(std::chrono::seconds(60)) == 0);
  const std::string text = lorafed::test::read_file(data);
  const std::string first_line = text.substr(0, text.find('\n'));
  INFO(first_line);
  const json record = json::parse(first_line);
  CHECK(record["answer"].get<std::string>().find("\n#### ") != std::string::npos);

  Process run({LORAFED_EXECUTABLE, "simulate",
               std::string(LORAFED_TEST_CONFIG_DIR) + "/tiny-gsm8k-gpt.toml", "--out", out.string(),
               "--set", "model.dataset=" + data.string()},
              out / "simulate.log", {{"LORAFED_CACHE_DIR", (work / "cache").string()}});
  const auto code = run.wait(std::chrono::seconds(400));
  INFO(lorafed::test::read_file(out / "simulate.log"));
  REQUIRE(code == 0);
  const json summary = json::parse(lorafed::test::read_file(out / "summary.json"));
  INFO(summary.dump(2));
  // Scored as GSM8K is: final-number exact match, with loss and perplexity.
  CHECK(summary.contains("final_exact_match"));
  CHECK(summary["final_perplexity"].get<double>() < summary["base_perplexity"].get<double>());
  // The server's generations: 4 per evaluation, rounds 0, 1 and 2.
  std::istringstream generations(lorafed::test::read_file(out / "generations.jsonl"));
  std::vector<json> rows;
  for (std::string line; std::getline(generations, line);) rows.push_back(json::parse(line));
  REQUIRE(rows.size() == 12);
  CHECK(rows.back()["evaluation"] == 3);
  CHECK(rows.front()["prompt"].get<std::string>().rfind("Q: ", 0) == 0);
}
