// `lorafed inspect` (docs/outputs.md §Inspecting adapters): a checkpoint's
// adapter and the PEFT export of the same change show the same ΔW, and the
// tables stay aligned whatever the names' length.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "cli/inspect_command.hpp"
#include "lorafed/adapter.hpp"
#include "lorafed/safetensors.hpp"
#include "src/peft_adapter.hpp"
#include "src/server/checkpoint.hpp"
#include "src/server/run_recorder.hpp"
#include "unit/temp_folder.hpp"

using namespace lorafed;
namespace fs = std::filesystem;

namespace {

// Rank-4 factors with B ≠ 0 (a trained adapter, not LoRA's initialisation).
Adapter trained_adapter(double alpha, const std::vector<std::string>& names) {
  at::manual_seed(17);
  Adapter adapter;
  adapter.alpha = alpha;
  std::int64_t in = 12;
  for (const std::string& name : names) {
    adapter.layers[name] = LoraFactors{at::randn({4, in}), at::randn({in - 3, 4})};
    in -= 2;
  }
  return adapter;
}

std::string inspected(const fs::path& path) {
  std::ostringstream out;
  REQUIRE(cli::inspect(path.string(), out) == 0);
  return out.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> fields_of(const std::string& line) {
  std::vector<std::string> fields;
  std::istringstream stream(line);
  for (std::string field; stream >> field;) fields.push_back(field);
  return fields;
}

// |ΔW| per layer: the seventh field of each row of the layer table.
std::map<std::string, double> delta_norms(const std::string& shown) {
  std::map<std::string, double> norms;
  const std::vector<std::string> lines = lines_of(shown);
  const auto header = std::find_if(lines.begin(), lines.end(), [](const std::string& line) {
    return line.starts_with("layer ");
  });
  REQUIRE(header != lines.end());
  for (auto line = header + 1; line != lines.end(); ++line) {
    const std::vector<std::string> fields = fields_of(*line);
    REQUIRE(fields.size() > 7);
    norms[fields[0]] = std::stod(fields[6]);
  }
  return norms;
}

// The screen column (UTF-8 characters, not bytes) where each
// whitespace-separated field of `line` ends.
std::vector<std::size_t> field_ends(const std::string& line) {
  std::vector<std::size_t> ends;
  std::size_t column = 0;
  bool in_field = false;
  for (const char c : line) {
    if ((static_cast<unsigned char>(c) & 0xC0) == 0x80) continue;  // UTF-8 continuation byte
    const bool space = c == ' ';
    if (in_field && space) ends.push_back(column);
    in_field = !space;
    ++column;
  }
  if (in_field) ends.push_back(column);
  return ends;
}

// Every row's right-aligned columns `first`..`last` (field indices) end where
// the header's do.
void check_aligned(const std::vector<std::string>& table, std::size_t first, std::size_t last) {
  const std::vector<std::size_t> header = field_ends(table.front());
  REQUIRE(header.size() > last);
  for (std::size_t row = 1; row < table.size(); ++row) {
    INFO(table.front() << "\n" << table[row]);
    const std::vector<std::size_t> ends = field_ends(table[row]);
    REQUIRE(ends.size() > last);
    for (std::size_t field = first; field <= last; ++field) {
      INFO("field " << field);
      CHECK(ends[field] == header[field]);
    }
  }
}

}  // namespace

TEST_CASE("inspect shows a checkpoint's change at alpha/r, as the PEFT export of it", "[inspect]") {
  const fs::path run = test::fresh_directory("inspect-checkpoint");
  // alpha 8 at rank 4: scale 2, so a scale of 1 shows half the norm.
  FederationConfig config;
  config.alpha = 8;
  config.strategy_name = "fedavg";
  ModelSpec spec;
  spec.model_id = "test-model";
  const Adapter adapter = trained_adapter(config.alpha, {"fc1", "fc2"});
  Checkpoint{3, to_named_tensors(adapter), RunRecorder::identity(config, spec), {}}.write(
      run / "checkpoint");
  const PeftExporter exporter(adapter.dense_delta());
  exporter.write(run / "peft" / "global", exporter.numerical_rank(), config.alpha, spec.model_id);

  // The reference: (alpha/r)·B·A computed here.
  std::map<std::string, double> expected;
  for (const auto& [name, factors] : adapter.layers) {
    expected[name] =
        (config.alpha / 4 * at::matmul(factors.b.to(at::kDouble), factors.a.to(at::kDouble)))
            .norm()
            .item<double>();
  }
  const std::string peft = inspected(run / "peft" / "global");
  const std::string folder = inspected(run / "checkpoint");
  const std::string state = inspected(run / "checkpoint" / "state-3.safetensors");
  INFO(peft << folder << state);
  CHECK(folder.find("checkpoint after round 3") != std::string::npos);
  CHECK(folder.find("lora_alpha 8 (scale 2) from checkpoint.json") != std::string::npos);
  CHECK(state.find("lora_alpha 8 (scale 2) from") != std::string::npos);
  for (const auto& shown : {peft, folder, state}) {
    const std::map<std::string, double> norms = delta_norms(shown);
    REQUIRE(norms.size() == 2);
    for (const auto& [name, norm] : expected) {
      INFO(name);
      // Four significant digits are shown.
      CHECK(norms.at(name) == Approx(norm).epsilon(1e-3));
    }
  }
}

TEST_CASE("inspect sizes its name column to the longest name", "[inspect]") {
  const fs::path directory = test::fresh_directory("inspect-columns");
  const std::string long_name = "transformer.h.11.attn.c_attn.lora_projection_of_queries";
  REQUIRE(long_name.size() >= 40);

  const Adapter adapter = trained_adapter(16, {"fc1", long_name});
  save_safetensors(directory / "adapter.safetensors", to_named_tensors(adapter),
                   {{"lora_alpha", "16"}});
  std::vector<std::string> layers = lines_of(inspected(directory / "adapter.safetensors"));
  layers.erase(layers.begin());  // the title
  REQUIRE(layers.size() == 3);
  CHECK(layers[2].starts_with(long_name + " "));
  // lora_A, lora_B, rank, |A|, |B|, |ΔW|, rank(ΔW)
  check_aligned(layers, 1, 7);

  save_safetensors(directory / "tensors.safetensors",
                   {{"w", at::randn({3, 5})}, {long_name + ".weight", at::randn({6, 2})}});
  std::vector<std::string> tensors = lines_of(inspected(directory / "tensors.safetensors"));
  tensors.erase(tensors.begin());
  REQUIRE(tensors.size() == 3);
  // shape, dtype, norm, rank
  check_aligned(tensors, 1, 4);
}

TEST_CASE("inspect shows a Hugging Face model folder, as a run's peft/base", "[inspect]") {
  const fs::path directory = test::fresh_directory("inspect-hf-model");
  std::ofstream(directory / "config.json")
      << R"({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"})";
  save_safetensors(
      directory / "model.safetensors",
      {{"transformer.wte.weight", at::randn({7, 4})}, {"transformer.ln_f.bias", at::randn({4})}},
      {{"format", "pt"}});
  const std::vector<std::string> lines = lines_of(inspected(directory));
  REQUIRE(lines.size() >= 5);
  CHECK(lines[0] == directory.string() + ": Hugging Face model, GPT2LMHeadModel (model_type gpt2)");
  CHECK(lines[1] == (directory / "model.safetensors").string() + ": 2 tensors");
  CHECK(lines[2] == "  format = pt");
  CHECK(inspected(directory).find("transformer.wte.weight") != std::string::npos);
}
