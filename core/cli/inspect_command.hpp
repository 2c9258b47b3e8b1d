#pragma once

#include <ostream>
#include <string>

namespace lorafed::cli {

// `lorafed inspect FILE`: an adapter's layers, factor shapes, rank, norms and
// the singular values of each layer's change (alpha/r)·B·A. FILE is a PEFT
// adapter directory or its adapter_model.safetensors, a lorafed adapter
// (<layer>.lora_A / .lora_B, as `lorafed aggregate` reads), a run's
// checkpoint folder or a state file in it (alpha from its checkpoint.json),
// or any other safetensors file, whose matrices are shown the same way
// (docs/outputs.md §Inspecting adapters).
int inspect(const std::string& path, std::ostream& out);

}  // namespace lorafed::cli
