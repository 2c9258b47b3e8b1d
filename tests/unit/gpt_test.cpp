// The `gpt` model backend: GPT-2's checkpoint layout (written out here, as
// Hugging Face names and shapes it), the forward pass against an independent
// computation, LoRA's identity start and merging, and the word-problem task.
#include <ATen/ATen.h>
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <set>

#include "answer_evaluation.hpp"
#include "byte_tokenizer.hpp"
#include "gpt_layout.hpp"
#include "gpt_model.hpp"
#include "instruction_data.hpp"
#include "lorafed/error.hpp"
#include "lorafed/safetensors.hpp"
#include "src/metrics_writer.hpp"
#include "src/plugin_registry.hpp"
#include "src/server/run_recorder.hpp"
#include "unit/temp_folder.hpp"

using namespace lorafed;
using namespace lorafed::gpt;
namespace fs = std::filesystem;

namespace {

GptShape tiny_shape(std::int64_t layers = 2) {
  GptShape shape;
  shape.vocab_size = 257;
  shape.context = 24;
  shape.n_embd = 8;
  shape.n_layer = layers;
  shape.n_head = 2;
  return shape;
}

// Random weights everywhere (LayerNorm gains and biases included), so no
// term of the forward pass can hide behind a zero or a one.
NamedTensors random_weights(const GptShape& shape, std::uint64_t seed) {
  at::manual_seed(seed);
  NamedTensors weights;
  for (const TensorLayout& entry : checkpoint_layout(shape)) {
    weights[entry.name] = at::randn(entry.shape) * 0.3;
    if (entry.name.find(".ln_") != std::string::npos && entry.name.ends_with(".weight"))
      weights[entry.name] += 1.0;
  }
  return weights;
}

// GPT-2's per-block tensors as transformers' GPT2Model names them, written
// out by hand: (suffix, shape) for n_embd = e. Conv1D weights are in × out.
std::vector<std::pair<std::string, std::vector<std::int64_t>>> gpt2_block(std::int64_t e) {
  return {{"ln_1.weight", {e}},
          {"ln_1.bias", {e}},
          {"attn.c_attn.weight", {e, 3 * e}},
          {"attn.c_attn.bias", {3 * e}},
          {"attn.c_proj.weight", {e, e}},
          {"attn.c_proj.bias", {e}},
          {"ln_2.weight", {e}},
          {"ln_2.bias", {e}},
          {"mlp.c_fc.weight", {e, 4 * e}},
          {"mlp.c_fc.bias", {4 * e}},
          {"mlp.c_proj.weight", {4 * e, e}},
          {"mlp.c_proj.bias", {e}}};
}

at::Tensor layer_norm_by_hand(const at::Tensor& x, const at::Tensor& gain, const at::Tensor& bias) {
  const at::Tensor mean = x.mean(-1, true);
  const at::Tensor variance = (x - mean).pow(2).mean(-1, true);
  return (x - mean) / at::sqrt(variance + 1e-5) * gain + bias;
}

at::Tensor gelu_tanh_by_hand(const at::Tensor& x) {
  return 0.5 * x * (1 + at::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x.pow(3))));
}

// One GPT-2 block and the head for a single sequence, position by position
// and head by head, from the checkpoint tensors (no LoraGpt code).
at::Tensor one_block_by_hand(const NamedTensors& w, const at::Tensor& tokens, std::int64_t heads) {
  const std::string t = "transformer.";
  const std::string h = t + "h.0.";
  const std::int64_t length = tokens.size(0);
  const std::int64_t e = w.at(t + "wte.weight").size(1);
  const std::int64_t d = e / heads;
  at::Tensor x =
      w.at(t + "wte.weight").index_select(0, tokens) + w.at(t + "wpe.weight").slice(0, 0, length);
  const at::Tensor normed = layer_norm_by_hand(x, w.at(h + "ln_1.weight"), w.at(h + "ln_1.bias"));
  const at::Tensor qkv =
      normed.matmul(w.at(h + "attn.c_attn.weight")) + w.at(h + "attn.c_attn.bias");
  at::Tensor attended = at::zeros({length, e});
  for (std::int64_t head = 0; head < heads; ++head) {
    const at::Tensor q = qkv.slice(1, head * d, (head + 1) * d);
    const at::Tensor k = qkv.slice(1, e + head * d, e + (head + 1) * d);
    const at::Tensor v = qkv.slice(1, 2 * e + head * d, 2 * e + (head + 1) * d);
    for (std::int64_t i = 0; i < length; ++i) {
      // Position i attends to positions 0..i.
      const at::Tensor scores = k.slice(0, 0, i + 1).matmul(q[i]) / std::sqrt(double(d));
      const at::Tensor weights =
          at::exp(scores - scores.max()) / at::exp(scores - scores.max()).sum();
      attended[i].slice(0, head * d, (head + 1) * d) = weights.matmul(v.slice(0, 0, i + 1));
    }
  }
  x = x + attended.matmul(w.at(h + "attn.c_proj.weight")) + w.at(h + "attn.c_proj.bias");
  const at::Tensor normed2 = layer_norm_by_hand(x, w.at(h + "ln_2.weight"), w.at(h + "ln_2.bias"));
  const at::Tensor hidden =
      gelu_tanh_by_hand(normed2.matmul(w.at(h + "mlp.c_fc.weight")) + w.at(h + "mlp.c_fc.bias"));
  x = x + hidden.matmul(w.at(h + "mlp.c_proj.weight")) + w.at(h + "mlp.c_proj.bias");
  x = layer_norm_by_hand(x, w.at(t + "ln_f.weight"), w.at(t + "ln_f.bias"));
  return x.matmul(w.at(t + "wte.weight").t());
}

Adapter nonzero_adapter(const ModelSpec& spec, std::int64_t rank) {
  Adapter adapter = init_adapter(spec, rank, 8.0, 3);
  at::manual_seed(5);
  for (auto& [name, factors] : adapter.layers) factors.b = at::randn(factors.b.sizes()) * 0.2;
  return adapter;
}

const std::vector<std::string> kAllProjections = {
    "transformer.h.0.attn.c_attn", "transformer.h.0.attn.c_proj", "transformer.h.0.mlp.c_fc",
    "transformer.h.0.mlp.c_proj",  "transformer.h.1.attn.c_attn", "transformer.h.1.attn.c_proj",
    "transformer.h.1.mlp.c_fc",    "transformer.h.1.mlp.c_proj"};

}  // namespace

TEST_CASE("the gpt checkpoint layout is GPT-2's as transformers names it", "[gpt]") {
  const GptShape shape = tiny_shape(2);
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> expected = {
      {"transformer.wte.weight", {257, 8}}, {"transformer.wpe.weight", {24, 8}}};
  for (int block = 0; block < 2; ++block) {
    for (const auto& [suffix, dims] : gpt2_block(8))
      expected.emplace_back("transformer.h." + std::to_string(block) + "." + suffix, dims);
  }
  expected.push_back({"transformer.ln_f.weight", {8}});
  expected.push_back({"transformer.ln_f.bias", {8}});
  const auto layout = checkpoint_layout(shape);
  REQUIRE(layout.size() == expected.size());
  for (std::size_t i = 0; i < layout.size(); ++i) {
    CHECK(layout[i].name == expected[i].first);
    CHECK(layout[i].shape == expected[i].second);
  }
}

TEST_CASE("a GPT2Model checkpoint with mask buffers, a tied head and config.json loads", "[gpt]") {
  const fs::path directory = test::fresh_directory("gpt-hf");
  const GptShape shape = tiny_shape(2);
  const NamedTensors weights = random_weights(shape, 1);
  // As GPT2Model saves it: no "transformer." prefix, causal-mask buffers.
  NamedTensors file;
  for (const auto& [name, tensor] : weights)
    file[name.substr(std::string("transformer.").size())] = tensor;
  file["h.0.attn.bias"] = at::ones({1, 1, 24, 24}).tril();
  file["h.1.attn.masked_bias"] = at::full({}, -1e4);
  file["lm_head.weight"] = weights.at("transformer.wte.weight").clone();
  save_safetensors(directory / "model.safetensors", file);
  std::ofstream(directory / "config.json") << R"({"model_type": "gpt2", "n_head": 4,
    "layer_norm_epsilon": 1e-05, "n_embd": 8, "n_layer": 2})";

  const Checkpoint checkpoint = read_checkpoint(directory / "model.safetensors", GptShape{});
  CHECK(checkpoint.shape.vocab_size == 257);
  CHECK(checkpoint.shape.context == 24);
  CHECK(checkpoint.shape.n_embd == 8);
  CHECK(checkpoint.shape.n_layer == 2);
  CHECK(checkpoint.shape.n_head == 4);  // from config.json
  REQUIRE(checkpoint.tensors.size() == weights.size());
  for (const auto& [name, tensor] : weights) CHECK(at::equal(checkpoint.tensors.at(name), tensor));

  SECTION("written back, it reloads with its head count from the metadata") {
    GptShape written = checkpoint.shape;
    written.n_head = 2;
    const fs::path other = test::fresh_directory("gpt-hf-written") / "base.safetensors";
    write_checkpoint(other, written, checkpoint.tensors);
    const Checkpoint again = read_checkpoint(other, GptShape{});
    CHECK(again.shape.n_head == 2);
    CHECK(at::equal(again.tensors.at("transformer.h.1.mlp.c_fc.weight"),
                    weights.at("transformer.h.1.mlp.c_fc.weight")));
  }
}

TEST_CASE("a checkpoint that is not GPT-2's layout is refused, naming the tensor", "[gpt]") {
  const fs::path directory = test::fresh_directory("gpt-bad");
  const GptShape shape = tiny_shape(1);
  NamedTensors weights = random_weights(shape, 2);
  const fs::path path = directory / "model.safetensors";
  const auto refused = [&](const NamedTensors& tensors, const std::string& words) {
    save_safetensors(path, tensors, {{"n_head", "2"}});
    CHECK_THROWS_WITH(read_checkpoint(path, shape), Catch::Contains(words));
  };
  NamedTensors missing = weights;
  missing.erase("transformer.h.0.ln_2.bias");
  refused(missing, "has no 'transformer.h.0.ln_2.bias'");
  NamedTensors wrong = weights;
  wrong["transformer.h.0.mlp.c_fc.weight"] = at::zeros({32, 8});  // nn.Linear's out × in
  refused(wrong, "'transformer.h.0.mlp.c_fc.weight' is [32, 8], expected [8, 32]");
  NamedTensors untied = weights;
  untied["lm_head.weight"] = at::zeros({257, 8});
  refused(untied, "untied head");
  NamedTensors extra = weights;
  extra["transformer.h.0.attn.q_proj.weight"] = at::zeros({8, 8});
  refused(extra, "'transformer.h.0.attn.q_proj.weight', which is not part of a GPT-2 model");
  refused({{"transformer.wte.weight", weights.at("transformer.wte.weight")},
           {"transformer.wpe.weight", weights.at("transformer.wpe.weight")}},
          "has no transformer blocks");
  NamedTensors nan = weights;
  nan["transformer.ln_f.bias"][0] = std::nan("");
  refused(nan, "NaN");
}

TEST_CASE("the gpt forward pass equals an independent computation of one block", "[gpt]") {
  // A generated one-block checkpoint, through the file format and back.
  const NamedTensors weights = random_weights(tiny_shape(1), 3);
  const fs::path file = test::fresh_directory("gpt-forward") / "model.safetensors";
  write_checkpoint(file, tiny_shape(1), weights);
  const Checkpoint checkpoint = read_checkpoint(file, GptShape{});
  const LoraGpt model(checkpoint.shape, checkpoint.tensors, {});
  const at::Tensor tokens =
      at::tensor(std::vector<std::int64_t>{72, 105, 33, 256, 7, 200, 65}, at::kLong);
  const at::Tensor batched = model.forward(at::stack({tokens, tokens.flip(0)}));
  REQUIRE(batched.sizes() == at::IntArrayRef({2, 7, 257}));
  CHECK(at::allclose(batched[0], one_block_by_hand(weights, tokens, 2), 1e-4, 1e-5));
  CHECK(at::allclose(batched[1], one_block_by_hand(weights, tokens.flip(0), 2), 1e-4, 1e-5));
  // Causal: a position's logits do not depend on later tokens.
  CHECK(at::allclose(model.forward(tokens.slice(0, 0, 4).unsqueeze(0))[0],
                     batched[0].slice(0, 0, 4), 1e-5, 1e-6));
}

TEST_CASE("a gpt LoRA adapter with B = 0 leaves the output unchanged", "[gpt]") {
  const GptShape shape = tiny_shape(2);
  LoraGpt model(shape, random_weights(shape, 4), kAllProjections);
  const at::Tensor tokens = at::randint(0, 257, {3, 10}, at::kLong);
  const at::Tensor before = model.forward(tokens);
  const Adapter adapter = init_adapter(model.spec("tiny"), 4, 8.0, 9);
  REQUIRE(adapter.layers.size() == 8);
  model.install_adapter(adapter);
  CHECK(at::equal(model.forward(tokens), before));
}

TEST_CASE("merging a gpt adapter into the base equals the adapted forward", "[gpt]") {
  const GptShape shape = tiny_shape(2);
  const NamedTensors weights = random_weights(shape, 5);
  LoraGpt adapted(shape, weights, kAllProjections);
  const ModelSpec spec = adapted.spec("tiny");
  CHECK(spec.target("transformer.h.1.attn.c_attn").in_features == 8);
  CHECK(spec.target("transformer.h.1.attn.c_attn").out_features == 24);
  CHECK(spec.target("transformer.h.0.mlp.c_proj").in_features == 32);
  const Adapter adapter = nonzero_adapter(spec, 3);
  adapted.install_adapter(adapter);
  const at::Tensor tokens = at::randint(0, 257, {2, 12}, at::kLong);
  const at::Tensor expected = adapted.forward(tokens);

  LoraGpt merged(shape, weights, kAllProjections);
  merged.merge_into_base(adapter);
  CHECK(at::allclose(merged.forward(tokens), expected, 1e-4, 1e-5));
  CHECK_FALSE(at::allclose(LoraGpt(shape, weights, {}).forward(tokens), expected, 1e-3, 1e-3));
  // The merge made new tensors: the base it shares with `adapted` is unchanged.
  CHECK(at::equal(adapted.base_weights().at("transformer.h.0.attn.c_attn.weight"),
                  weights.at("transformer.h.0.attn.c_attn.weight")));
  CHECK(at::allclose(merged.base_weights().at("transformer.h.0.attn.c_attn.weight"),
                     weights.at("transformer.h.0.attn.c_attn.weight") +
                         adapter.dense_delta().at("transformer.h.0.attn.c_attn").t()));

  LoraGpt server(shape, weights, kAllProjections);
  server.install_merged_delta(adapter.dense_delta());
  CHECK(at::allclose(server.forward(tokens), expected, 1e-4, 1e-5));
}

TEST_CASE("word problems are distinct, answered correctly and kept out of the test split",
          "[gpt]") {
  for (std::int64_t type = 0; type < 7; ++type) {
    const auto train = generate_problems(type, 200, 20, 1);
    const auto again = generate_problems(type, 200, 20, 1);
    const auto test = generate_problems(type, 50, 20, 2, train);
    REQUIRE(train.size() == 200);
    std::set<std::string> prompts;
    for (std::size_t i = 0; i < train.size(); ++i) {
      CHECK(train[i].prompt == again[i].prompt);
      CHECK(train[i].prompt.starts_with("Q: "));
      CHECK(train[i].prompt.ends_with("\nA: "));
      CHECK(std::stoll(train[i].answer) >= 0);
      prompts.insert(train[i].prompt);
    }
    CHECK(prompts.size() == 200);
    for (const auto& problem : test) CHECK_FALSE(prompts.contains(problem.prompt));
  }
  // Spot checks of the arithmetic, by parsing the numbers back out.
  for (const auto& problem : generate_problems(0, 20, 20, 3)) {  // "has A ... gets B more"
    const auto has = problem.prompt.find(" has ") + 5;
    const auto gets = problem.prompt.find(" gets ") + 6;
    CHECK(std::stoll(problem.answer) ==
          std::stoll(problem.prompt.substr(has)) + std::stoll(problem.prompt.substr(gets)));
  }
  for (const auto& problem : generate_problems(3, 20, 20, 3)) {  // "shares P ... among F friends"
    const auto shares = problem.prompt.find(" shares ") + 8;
    const auto among = problem.prompt.find(" among ") + 7;
    CHECK(std::stoll(problem.answer) * std::stoll(problem.prompt.substr(among)) ==
          std::stoll(problem.prompt.substr(shares)));
  }
  for (const auto& problem : generate_problems(6, 20, 20, 3)) {  // "has A items and B others"
    const auto has = problem.prompt.find(" has ") + 5;
    CHECK(problem.answer == std::to_string(std::stoll(problem.prompt.substr(has))));
  }
  CHECK_THROWS_AS(generate_problems(2, 1000, 3, 1), ConfigError);  // too few distinct ones
}

TEST_CASE("training sequences target the answer and its end, never the prompt", "[gpt]") {
  const WordProblem problem{"Q: 1+2?\nA: ", "3", 0};
  const WordProblem longer{"Q: 10+20?\nA: ", "30", 0};
  const data::Examples examples = encode_for_training({problem, longer});
  REQUIRE(examples.inputs.sizes() == at::IntArrayRef({2, 15}));
  // Inputs: the sequence without its last token, padded with <|endoftext|>.
  CHECK(examples.inputs[0][0].item<std::int64_t>() == 'Q');
  CHECK(examples.inputs[0][11].item<std::int64_t>() == '3');
  CHECK(examples.inputs[0][12].item<std::int64_t>() == kEndOfText);
  // Labels: -100 on the prompt, then the answer's bytes and <|endoftext|>.
  const at::Tensor targets = examples.labels[1];  // prompt of 13 bytes
  CHECK(targets.slice(0, 0, 12).eq(-100).all().item<bool>());
  CHECK(targets[12].item<std::int64_t>() == '3');
  CHECK(targets[13].item<std::int64_t>() == '0');
  CHECK(targets[14].item<std::int64_t>() == kEndOfText);
  const at::Tensor padded = examples.labels[0];  // prompt of 11 bytes
  CHECK(padded[10].item<std::int64_t>() == '3');
  CHECK(padded[11].item<std::int64_t>() == kEndOfText);
  CHECK(padded.ge(0).sum().item<std::int64_t>() == 2);
}

TEST_CASE("greedy answers do not depend on how prompts are batched", "[gpt]") {
  const GptShape shape = tiny_shape(2);
  const LoraGpt model(shape, random_weights(shape, 6), {});
  const std::vector<WordProblem> problems = {
      {"Q: a?\nA: ", "1", 0}, {"Q: longer one?\nA: ", "2", 0}, {"Q: mid?\nA: ", "3", 0}};
  const auto together = greedy_answers(model, problems, byte_encoder(), 4, 8);
  for (std::size_t i = 0; i < problems.size(); ++i) {
    const auto alone = greedy_answers(model, {problems[i]}, byte_encoder(), 4, 1);
    CHECK(alone.at(0) == together.at(i));
    // Step by step by hand: the argmax after the prompt, appended, again.
    auto tokens = encode_bytes(problems[i].prompt);
    std::string expected;
    for (int step = 0; step < 4; ++step) {
      const at::Tensor logits = model.forward(at::tensor(tokens, at::kLong).unsqueeze(0));
      const std::int64_t next = logits[0][-1].argmax().item<std::int64_t>();
      if (next == kEndOfText || next == '\n') break;
      expected.push_back(static_cast<char>(next));
      tokens.push_back(next);
    }
    CHECK(together.at(i) == expected);
  }
}

TEST_CASE("the gpt backend loads a checkpoint, names PEFT modules and trains the adapter",
          "[gpt]") {
  const fs::path directory = test::fresh_directory("gpt-backend");
  GptShape shape = tiny_shape(2);
  shape.context = 96;
  write_checkpoint(directory / "model.safetensors", shape, random_weights(shape, 7));
  const PluginRegistry registry({LORAFED_BUILD_PLUGIN_DIR});
  const auto plugin = registry.model("gpt");
  const auto make = [&](const std::string& extra, ModelContext::Role role) {
    const auto config =
        ConfigTable::parse_string("checkpoint = \"" + (directory / "model.safetensors").string() +
                                      "\"\ntrain_per_task = 20\ntest_per_task = 5\n" + extra,
                                  "test.toml");
    return keep_library_alive(
        plugin.factory->create(
            config, ModelContext{role, role == ModelContext::Role::kClient ? 1 : -1, 3, 7, {}}),
        plugin.factory);
  };
  auto client = make("targets = [\"c_attn\", \"mlp.c_proj\"]", ModelContext::Role::kClient);
  const ModelSpec spec = client->spec();
  REQUIRE(spec.targets.size() == 4);
  CHECK(spec.targets[0].name == "transformer.h.0.attn.c_attn");
  CHECK(spec.targets[1].name == "transformer.h.0.mlp.c_proj");
  CHECK(spec.model_id.starts_with("gpt-2x8h2-"));
  CHECK(client->num_train_examples() > 0);

  const Adapter start = nonzero_adapter(spec, 2);
  client->install_adapter(start);
  TrainOptions options;
  options.optimizer = "adamw";
  options.learning_rate = 0.01;
  options.local_steps = 3;
  options.batch_size = 4;
  const TrainReport report = client->train(ParameterGroup::kAdapter, options, 1);
  CHECK(report.steps == 3);
  CHECK(std::isfinite(report.mean_loss));
  const Adapter trained = client->adapter();
  for (const auto& [name, factors] : trained.layers) {
    CHECK_FALSE(at::equal(factors.a, start.layers.at(name).a));
    CHECK_FALSE(at::equal(factors.b, start.layers.at(name).b));
  }
  const EvalReport evaluation = client->evaluate();
  CHECK(evaluation.num_examples > 0);
  CHECK(evaluation.metrics.at("exact_match") >= 0.0);
  CHECK(evaluation.metrics.at("exact_match") <= 1.0);

  auto server = make("", ModelContext::Role::kServer);
  CHECK(server->spec().targets.size() == 8);     // c_attn, c_proj (both), c_fc per block
  CHECK(server->evaluate().num_examples == 35);  // 7 tasks × 5
  CHECK_THROWS_WITH(make("targets = [\"q_proj\"]", ModelContext::Role::kServer),
                    Catch::Contains("names no module: 'q_proj'"));
  CHECK_THROWS_WITH(make("tasks = [\"add\", \"divide\"]", ModelContext::Role::kServer),
                    Catch::Contains("unknown task 'divide'"));

  // Its state after a merge rebuilds it: a fresh backend with the state
  // loaded answers as this one does ([client] models = "on_demand").
  auto merging = make("", ModelContext::Role::kClient);
  CHECK(merging->client_state().empty());
  const Adapter merged = nonzero_adapter(merging->spec(), 2);
  merging->merge_adapter(merged);
  const NamedTensors state = merging->client_state();
  CHECK(state.size() == random_weights(shape, 7).size());
  auto rebuilt = make("", ModelContext::Role::kClient);
  const double fresh_loss = rebuilt->evaluate().loss;
  rebuilt->load_client_state(state);
  CHECK(rebuilt->evaluate().loss == merging->evaluate().loss);
  CHECK(rebuilt->evaluate().loss != fresh_loss);
  NamedTensors missing = state;
  missing.erase(missing.begin());
  CHECK_THROWS_WITH(make("", ModelContext::Role::kClient)->load_client_state(missing),
                    Catch::Contains("gpt model: client state") && Catch::Contains("missing"));
}

namespace {

// GPT-2's bytes_to_unicode (encoder.py), from its definition: printable
// Latin-1 bytes stand for themselves, the others take 256, 257, ... in order.
std::string gpt2_byte_symbol(int byte) {
  const auto printable = [](int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  int code = byte;
  if (!printable(byte)) {
    code = 256;
    for (int b = 0; b < byte; ++b) code += printable(b) ? 0 : 1;
  }
  std::string text;  // UTF-8 of a code point below 0x800
  if (code < 0x80) {
    text.push_back(static_cast<char>(code));
  } else {
    text.push_back(static_cast<char>(0xC0 | (code >> 6)));
    text.push_back(static_cast<char>(0x80 | (code & 0x3F)));
  }
  return text;
}

// A GPT-2-style tokenizer.json: byte b is id b, the merge " 1" is 258,
// <|endoftext|> is `end`.
nlohmann::json gpt2_tokenizer_json(int end) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int byte = 0; byte < 256; ++byte) vocab[gpt2_byte_symbol(byte)] = byte;
  vocab[gpt2_byte_symbol(' ') + "1"] = 258;
  vocab["<|endoftext|>"] = end;
  const nlohmann::json byte_level = {{"type", "ByteLevel"},
                                     {"add_prefix_space", false},
                                     {"trim_offsets", true},
                                     {"use_regex", true}};
  return {{"version", "1.0"},
          {"added_tokens",
           {{{"id", end},
             {"content", "<|endoftext|>"},
             {"single_word", false},
             {"lstrip", false},
             {"rstrip", false},
             {"normalized", false},
             {"special", true}}}},
          {"normalizer", nullptr},
          {"pre_tokenizer", byte_level},
          {"post_processor", nullptr},
          {"decoder", byte_level},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"vocab", vocab},
            {"merges", {gpt2_byte_symbol(' ') + " 1"}}}}};
}

}  // namespace

TEST_CASE("a gpt checkpoint with a tokenizer.json beside it is read with that tokenizer", "[gpt]") {
  const fs::path directory = test::fresh_directory("gpt-bpe");
  GptShape shape = tiny_shape(2);
  shape.vocab_size = 300;
  shape.context = 96;
  write_checkpoint(directory / "model.safetensors", shape, random_weights(shape, 9));
  const PluginRegistry registry({LORAFED_BUILD_PLUGIN_DIR});
  const auto plugin = registry.model("gpt");
  const auto make = [&](ModelContext::Role role) {
    const auto config =
        ConfigTable::parse_string("checkpoint = \"" + (directory / "model.safetensors").string() +
                                      "\"\ntrain_per_task = 4\ntest_per_task = 2\n",
                                  "test.toml");
    return keep_library_alive(
        plugin.factory->create(
            config, ModelContext{role, role == ModelContext::Role::kClient ? 0 : -1, 2, 7, {}}),
        plugin.factory);
  };
  const std::string bytes_id = make(ModelContext::Role::kServer)->spec().model_id;

  const auto write_tokenizer = [&](const nlohmann::json& json) {
    std::ofstream(directory / "tokenizer.json") << json.dump();
  };
  write_tokenizer(gpt2_tokenizer_json(299));
  auto client = make(ModelContext::Role::kClient);
  // The tokenizer's files are part of the model id: a client tokenising
  // otherwise is another model.
  CHECK(client->spec().model_id.starts_with("gpt-2x8h2-"));
  CHECK(client->spec().model_id != bytes_id);
  client->install_adapter(nonzero_adapter(client->spec(), 2));
  TrainOptions options;
  options.local_steps = 2;
  options.batch_size = 2;
  CHECK(std::isfinite(client->train(ParameterGroup::kAdapter, options, 1).mean_loss));
  const EvalReport evaluation = client->evaluate();
  CHECK(evaluation.num_examples > 0);
  CHECK(std::isfinite(evaluation.loss));
  CHECK(make(ModelContext::Role::kServer)->evaluate().num_examples == 14);  // 7 tasks × 2

  // The exported base carries the tokenizer and its end token.
  const fs::path out = test::fresh_directory("gpt-bpe-out");
  REQUIRE(client->write_hf_base(out));
  CHECK(fs::exists(out / "tokenizer.json"));
  std::ifstream config_file(out / "config.json");
  CHECK(nlohmann::json::parse(config_file)["eos_token_id"] == 299);

  // A tokenizer larger than the embeddings, or a broken one, is refused.
  write_tokenizer(gpt2_tokenizer_json(300));
  CHECK_THROWS_WITH(make(ModelContext::Role::kServer),
                    Catch::Contains("has 301 tokens, more than the checkpoint's 300 embeddings"));
  std::ofstream(directory / "tokenizer.json") << "{\"model\": ";
  CHECK_THROWS_WITH(make(ModelContext::Role::kServer), Catch::Contains("tokenizer.json"));
}

namespace {

// A gpt backend that pretrains a 2-block, 8-wide base for two steps and
// caches it in `cache`.
std::shared_ptr<ModelBackend> tiny_pretrained_gpt(const fs::path& cache, ModelContext::Role role) {
  static const PluginRegistry registry({LORAFED_BUILD_PLUGIN_DIR});
  const auto plugin = registry.model("gpt");
  const auto config = ConfigTable::parse_string(
      "n_layer = 2\nn_embd = 8\nn_head = 2\ncontext = 96\npretrain_steps = 2\n"
      "pretrain_batch_size = 2\ntrain_per_task = 5\ntest_per_task = 2\ncache_dir = \"" +
          cache.string() + "\"\n",
      "test.toml");
  return keep_library_alive(
      plugin.factory->create(
          config, ModelContext{role, role == ModelContext::Role::kClient ? 0 : -1, 2, 7, {}}),
      plugin.factory);
}

}  // namespace

TEST_CASE("the gpt backend writes its base, never a merged one, as a GPT2LMHeadModel folder",
          "[gpt][peft]") {
  const fs::path cache = test::fresh_directory("gpt-hf-cache");
  const fs::path out = test::fresh_directory("gpt-hf-base");
  auto client = tiny_pretrained_gpt(cache, ModelContext::Role::kClient);
  // The base as pretrained: the one file in the cache.
  std::vector<fs::path> cached;
  for (const auto& entry : fs::directory_iterator(cache)) cached.push_back(entry.path());
  REQUIRE(cached.size() == 1);
  const SafetensorsFile pretrained = load_safetensors(cached.front());

  // FLoRA's merge changes this instance's base; what it writes is the base.
  client->merge_adapter(nonzero_adapter(client->spec(), 2));
  const std::optional<HfBaseModel> written = client->write_hf_base(out / "base");
  REQUIRE(written.has_value());
  CHECK(written->task_type == "CAUSAL_LM");
  CHECK(written->fan_in_fan_out);  // GPT-2's projections are Conv1D, weights in × out

  // config.json as transformers' GPT2Config reads it.
  std::ifstream config_file(out / "base" / "config.json");
  const nlohmann::json config = nlohmann::json::parse(config_file);
  CHECK(config["architectures"] == nlohmann::json::array({"GPT2LMHeadModel"}));
  CHECK(config["model_type"] == "gpt2");
  CHECK(config["vocab_size"] == 257);
  CHECK(config["n_positions"] == 96);
  CHECK(config["n_ctx"] == 96);
  CHECK(config["n_embd"] == 8);
  CHECK(config["n_layer"] == 2);
  CHECK(config["n_head"] == 2);
  CHECK(config["n_inner"].is_null());  // 4 · n_embd
  CHECK(config["activation_function"] == "gelu_new");
  CHECK(config["layer_norm_epsilon"].get<double>() == 1e-5);
  CHECK(config["tie_word_embeddings"] == true);
  CHECK(config["bos_token_id"] == kEndOfText);
  CHECK(config["eos_token_id"] == kEndOfText);
  CHECK(config["scale_attn_weights"] == true);

  // model.safetensors: GPT2LMHeadModel's names and shapes as save_pretrained
  // writes them (the tied lm_head.weight is not stored), written out here.
  std::map<std::string, std::vector<std::int64_t>> expected = {{"transformer.wte.weight", {257, 8}},
                                                               {"transformer.wpe.weight", {96, 8}},
                                                               {"transformer.ln_f.weight", {8}},
                                                               {"transformer.ln_f.bias", {8}}};
  for (int block = 0; block < 2; ++block) {
    for (const auto& [suffix, shape] : gpt2_block(8))
      expected["transformer.h." + std::to_string(block) + "." + suffix] = shape;
  }
  const SafetensorsFile file = load_safetensors(out / "base" / "model.safetensors");
  CHECK(file.metadata.at("format") == "pt");
  REQUIRE(file.tensors.size() == expected.size());
  for (const auto& [name, shape] : expected) {
    INFO(name);
    REQUIRE(file.tensors.contains(name));
    CHECK(file.tensors.at(name).sizes().vec() == shape);
    CHECK(file.tensors.at(name).scalar_type() == at::kFloat);
    CHECK(at::equal(file.tensors.at(name), pretrained.tensors.at(name)));
  }
}

TEST_CASE("a run's gpt adapters point at its base folder by absolute path, as a causal LM",
          "[gpt][peft]") {
  const fs::path cache = test::fresh_directory("gpt-hf-run-cache");
  const fs::path run = test::fresh_directory("gpt-hf-run");
  auto server = tiny_pretrained_gpt(cache, ModelContext::Role::kServer);
  const ModelSpec spec = server->spec();
  FederationConfig federation;
  federation.alpha = 16;
  federation.ranks = {2, 4};
  NamedTensors delta;
  at::manual_seed(3);
  for (const TargetLayer& layer : spec.targets)
    delta[layer.name] = at::randn({layer.out_features, layer.in_features}) * 0.1;
  MetricsWriter metrics(run);
  RunRecorder recorder(federation, spec, metrics);
  const nlohmann::json written = recorder.export_adapters(delta, *server);

  CHECK(written["peft_base"] == "peft/base");
  CHECK(written["peft"].size() == 3);  // global, rank-2, rank-4
  CHECK(fs::exists(run / "peft" / "base" / "config.json"));
  CHECK(fs::exists(run / "peft" / "base" / "model.safetensors"));
  const fs::path base = fs::absolute(run / "peft" / "base").lexically_normal();
  for (const char* folder : {"global", "rank-2", "rank-4"}) {
    INFO(folder);
    std::ifstream config_file(run / "peft" / folder / "adapter_config.json");
    const nlohmann::json config = nlohmann::json::parse(config_file);
    CHECK(config["base_model_name_or_path"] == base.string());
    CHECK(fs::path(config["base_model_name_or_path"].get<std::string>()).is_absolute());
    CHECK(config["task_type"] == "CAUSAL_LM");
    CHECK(config["fan_in_fan_out"] == true);
    // PEFT's shapes for Conv1D targets all the same: A is r × in, B out × r.
    const SafetensorsFile adapter =
        load_safetensors(run / "peft" / folder / "adapter_model.safetensors");
    const std::int64_t r = config["r"].get<std::int64_t>();
    const std::string c_fc = "base_model.model.transformer.h.0.mlp.c_fc";
    CHECK(adapter.tensors.at(c_fc + ".lora_A.weight").sizes().vec() ==
          std::vector<std::int64_t>{r, 8});
    CHECK(adapter.tensors.at(c_fc + ".lora_B.weight").sizes().vec() ==
          std::vector<std::int64_t>{32, r});
  }
}
