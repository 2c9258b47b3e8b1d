#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "lorafed/adapter.hpp"
#include "lorafed/config.hpp"
#include "lorafed/config_value.hpp"
#include "lorafed/export.hpp"
#include "lorafed/model_spec.hpp"
#include "lorafed/named_tensors.hpp"
#include "lorafed/train_options.hpp"

namespace lorafed {

// Which parameters a training call updates.
enum class ParameterGroup {
  kAdapter,  // the LoRA factors only (base frozen)
  kLocal,    // the model's own trainable parameters, adapter frozen
  kAll,
};

// Who a backend instance serves: the server evaluates the global model on a
// held-out test set; a client trains on its partition and evaluates on its
// own test split.
struct ModelContext {
  enum class Role { kServer, kClient };
  Role role = Role::kServer;
  std::int64_t client_index = -1;  // 0-based, clients only
  std::int64_t num_clients = 0;
  std::uint64_t seed = 0;
  // The server's run folder ([federation] output_dir), where a backend may
  // write what a person reads besides the metrics (e.g. generated text);
  // empty for clients and for a configuration check.
  std::string output_directory;
};

struct TrainReport {
  std::int64_t examples_seen = 0;
  std::int64_t steps = 0;
  double mean_loss = 0.0;
  // Floating-point operations the training took (forward and backward
  // passes, counted analytically); 0 when the backend does not count them.
  double flops = 0.0;
};

// A base model written as a Hugging Face model folder (write_hf_base), and
// what a PEFT adapter of it must say in adapter_config.json.
struct HfBaseModel {
  std::string task_type;        // PEFT's task_type, e.g. "CAUSAL_LM"; empty: none (null)
  bool fan_in_fan_out = false;  // target weights are stored in × out (transformers' Conv1D)
};

struct EvalReport {
  std::int64_t num_examples = 0;
  double loss = 0.0;
  Metrics metrics;  // e.g. "accuracy" for classifiers
};

// A LibTorch model with LoRA target layers and its data (docs/writing-a-strategy.md).
// One instance per client; not thread-safe, but instances are independent.
class LORAFED_API ModelBackend {
 public:
  virtual ~ModelBackend();

  virtual ModelSpec spec() const = 0;
  virtual std::int64_t num_train_examples() const = 0;

  // Makes `adapter` the model's trainable LoRA factors (copied).
  virtual void install_adapter(const Adapter& adapter) = 0;
  // The current LoRA factors, detached copies.
  virtual Adapter adapter() const = 0;
  // Evaluates W0 + delta per target layer from now on, with no LoRA factors
  // (the server's view of a global model; an empty map is the base model).
  virtual void install_merged_delta(const NamedTensors& delta_per_layer) = 0;

  // Adds scale·B·A of `adapter` to this instance's base weights for good
  // (FLoRA's merge); other instances sharing the base are not affected.
  virtual void merge_adapter(const Adapter& adapter) = 0;

  // Trains `group` for options.local_steps steps or options.local_epochs
  // epochs; `seed` fixes batch order so a run is reproducible.
  virtual TrainReport train(ParameterGroup group, const TrainOptions& options,
                            std::uint64_t seed) = 0;
  virtual EvalReport evaluate() = 0;

  // The model's own parameters (everything but the LoRA factors), detached
  // copies by name. The default has none. Their total size is what
  // exchanging the full model would move.
  virtual NamedTensors local_parameters() const;
  // Overwrites the named local parameters (a subset is fine, e.g. the shared
  // parameters of the spec). The default throws: the model shares nothing.
  virtual void load_local_parameters(const NamedTensors& parameters);

  // What this instance carries from one instruction to the next that a
  // freshly made one for the same client lacks, by name, as detached
  // copies: the base as merge_adapter left it, local parameters that
  // training kLocal or kAll changed. Empty while it is as made. After
  // load_client_state(client_state()) a fresh instance behaves as this one,
  // so a client's backend need exist only while it works ([client] models =
  // "on_demand", docs/configuration.md). The defaults are local_parameters()
  // and load_local_parameters(): right for a backend whose only such state
  // is its local parameters. A backend whose merge_adapter changes weights
  // that local_parameters() leaves out must override both.
  virtual NamedTensors client_state() const;
  virtual void load_client_state(const NamedTensors& state);

  // Writes the frozen base model — as created, never one changed by
  // merge_adapter or by training kLocal — into `directory` as a folder that
  // transformers' from_pretrained loads (config.json naming the architecture,
  // model.safetensors), so an exported PEFT adapter can point at it
  // (docs/outputs.md §PEFT export). The default writes nothing and returns
  // nullopt: the model has no Hugging Face architecture.
  virtual std::optional<HfBaseModel> write_hf_base(const std::filesystem::path& directory) const;
};

}  // namespace lorafed
