// lorafed_fuzz_seeds DIR: writes valid messages of every body kind, with and
// without tensors, small and split over frames, as a starting corpus for
// lorafed_fuzz_envelope (format: fuzz_input.hpp). The small adapters fit the
// target's model spec (update_checks.hpp: A 2×5, B 6×2, a shared
// "head.weight" 3×2), so the fuzzer starts from updates that pass every check.
#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "fuzz_input.hpp"
#include "src/wire/codec.hpp"

int main(int argc, char** argv) {
  namespace wire = lorafed::wire;
  if (argc != 2) {
    std::cerr << "usage: lorafed_fuzz_seeds DIR\n";
    return 2;
  }
  const std::filesystem::path directory = argv[1];
  std::filesystem::create_directories(directory);
  const lorafed::NamedTensors adapter = {{"fc1.lora_A", at::randn({2, 5})},
                                         {"fc1.lora_B", at::randn({6, 2})}};
  const lorafed::NamedTensors framed = {{"fc1.lora_A", at::randn({4, 300})},
                                        {"fc1.lora_B", at::randn({300, 4})}};
  lorafed::NamedTensors with_parameter = adapter;
  with_parameter.emplace(std::string(wire::kParameterPrefix) + "head.weight", at::randn({3, 2}));
  lorafed::NamedTensors with_control = adapter;  // SCAFFOLD's control variate change
  for (const auto& [name, tensor] : adapter) {
    with_control.emplace(std::string(wire::kControlPrefix) + name, at::randn(tensor.sizes()));
  }
  const std::vector<wire::Envelope> seeds = {
      {0, "client-1", "server", wire::RegisterBody{4, "mlp-784x128x64x10", 10}, {}},
      {1, "server", "client-0", wire::FitInsBody{16, {{"lr", 0.1}, {"name", std::string("x")}}, 0},
       adapter},
      {1, "client-0", "server", wire::FitResBody{16, 10, {{"train_loss", 0.5}}}, adapter},
      {1, "client-0", "server", wire::FitResBody{16, 10, {}}, framed},
      {1, "client-0", "server", wire::FitResBody{16, 10, {}}, with_parameter},
      {1, "client-0", "server", wire::FitResBody{16, 10, {}}, with_control},
      // What a hostile peer may send instead of matrices.
      {1,
       "client-0",
       "server",
       wire::FitResBody{16, 10, {}},
       {{"fc1.lora_A", at::randn({})}, {"fc1.lora_B", at::randn({6, 2})}}},
      {1,
       "client-0",
       "server",
       wire::FitResBody{16, 10, {}},
       {{"fc1.lora_A", at::randn({5})}, {"fc1.lora_B", at::randn({6})}}},
      {2, "server", "client-0", wire::EvaluateInsBody{16, {}}, adapter},
      {2, "client-0", "server", wire::EvaluateResBody{10, 0.3, {{"accuracy", 0.9}}}, {}},
      {0, "client-0", "server", wire::HeartbeatBody{}, {}},
      {0, "server", "client-0", wire::ReconnectBody{100}, {}},
      {0, "server", "client-0", wire::ShutdownBody{"done"}, {}},
      {3, "client-0", "server", wire::ErrorBody{wire::ErrorCode::kClientFailure, "x"}, {}},
  };
  wire::EncodeOptions small_frames;
  small_frames.max_frame_bytes = 1024;  // the framed seed spans several frames
  int index = 0;
  for (const wire::Envelope& seed : seeds) {
    for (const wire::WireDtype dtype : {wire::WireDtype::kFloat32, wire::WireDtype::kFloat16}) {
      small_frames.dtype = dtype;
      std::ofstream out(directory / ("seed-" + std::to_string(index++)), std::ios::binary);
      out << lorafed::fuzz::input_from_message(wire::encode(seed, small_frames));
    }
  }
  std::cout << "wrote " << index << " seeds to " << directory.string() << "\n";
  return 0;
}
