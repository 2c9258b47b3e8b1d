// lorafed's own logits for check_peft_export.py to match with plain torch:
// the base, the run's global model as the server evaluated it, and the base
// with the exported PEFT adapter installed as clients install adapters.
//
//   lorafed_peft_logits BASE.safetensors STATE.safetensors ADAPTER_DIR OUT.safetensors
//
// BASE is the base lorafed used (the gpt backend's cached pretrained base,
// not the run's exported copy of it); STATE the run's last checkpoint state
// of a FedHL or FlexLoRA run (<layer>.global: each layer's global change ΔW,
// out × in, which the server evaluates as W0 + ΔWᵀ); ADAPTER_DIR a PEFT
// adapter folder of the run. OUT holds, for a few token sequences i:
// tokens_i (int64), and base_logits_i, global_logits_i and adapted_logits_i
// (length × vocab, float32).
#include <torch/torch.h>

#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "byte_tokenizer.hpp"
#include "gpt_layout.hpp"
#include "gpt_model.hpp"
#include "lorafed/error.hpp"
#include "lorafed/safetensors.hpp"
#include "src/peft_adapter.hpp"

using namespace lorafed;
using namespace lorafed::gpt;

namespace {

// <layer>.global → <layer>: the global change per layer.
NamedTensors global_change(const SafetensorsFile& state) {
  const std::string suffix = ".global";
  NamedTensors delta;
  for (const auto& [name, tensor] : state.tensors) {
    if (!name.ends_with(suffix)) throw Error("state tensor '" + name + "' is not <layer>.global");
    delta[name.substr(0, name.size() - suffix.size())] = tensor;
  }
  return delta;
}

std::vector<std::vector<std::int64_t>> sequences(std::int64_t context) {
  // A single token, a word problem, text with <|endoftext|> inside, and the
  // whole context (every position embedding).
  std::vector<std::vector<std::int64_t>> result = {
      {kEndOfText},
      encode_bytes("Q: Cara has 7 shells, gets 5 more. How many now?\nA: 12"),
      encode_bytes("GNU GENERAL PUBLIC LICENSE"),
  };
  result[2].push_back(kEndOfText);
  for (const std::int64_t token : encode_bytes("Version 3")) result[2].push_back(token);
  std::vector<std::int64_t> full;
  for (std::int64_t i = 0; i < context; ++i) full.push_back((i * 37 + 11) % kByteVocabulary);
  result.push_back(full);
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: lorafed_peft_logits BASE.safetensors STATE.safetensors ADAPTER_DIR "
                 "OUT.safetensors\n";
    return 2;
  }
  try {
    const Checkpoint base = read_checkpoint(argv[1], GptShape{});
    const NamedTensors delta = global_change(load_safetensors(argv[2]));
    const PeftAdapter peft = load_peft_adapter(argv[3]);
    std::vector<std::string> targets;
    for (const auto& [layer, factors] : peft.adapter.layers) targets.push_back(layer);

    const LoraGpt plain(base.shape, base.tensors, {});
    LoraGpt global(base.shape, base.tensors, targets);
    global.install_merged_delta(delta);
    LoraGpt adapted(base.shape, base.tensors, targets);
    adapted.install_adapter(peft.adapter);

    NamedTensors out;
    torch::NoGradGuard no_grad;
    const auto all = sequences(base.shape.context);
    for (std::size_t i = 0; i < all.size(); ++i) {
      const at::Tensor tokens = at::tensor(all[i], at::kLong);
      const at::Tensor batch = tokens.unsqueeze(0);
      const std::string index = std::to_string(i);
      out["tokens_" + index] = tokens;
      out["base_logits_" + index] = plain.forward(batch)[0].contiguous();
      out["global_logits_" + index] = global.forward(batch)[0].contiguous();
      out["adapted_logits_" + index] = adapted.forward(batch)[0].contiguous();
    }
    save_safetensors(argv[4], out, {{"format", "pt"}});
    std::cout << "wrote " << all.size() << " sequences' logits to " << argv[4] << "\n";
    return 0;
  } catch (const std::exception& error) {
    std::cerr << "lorafed_peft_logits: " << error.what() << "\n";
    return 1;
  }
}
