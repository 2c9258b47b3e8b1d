// bench/transport: framed adapter throughput over tcp loopback with the zmq
// transport plugin, against raw ZeroMQ moving the same frames.
//
// framed: encode the adapter (wire::encode, 4 MiB frames), send it over a
//         DEALER channel, receive it on a ROUTER channel, decode it
//         (wire::decode verifies frame 0 and every tensor entry) and check it
//         against the model spec as the server does before it accepts an
//         update (validate_adapter: layers, shapes, rank, finite values).
// raw:    the same frames, already encoded, sent and received with cppzmq
//         directly: no encoding, no checks, no decoding.
//
// Adapters are one layer's A (16 × n) and B (n × 16) in float32, n chosen so
// that they weigh 1, 64 and 256 MiB. A sender thread streams `reps` copies
// while the receiving thread takes them; the figure is bytes over the time
// from the first send to the last message received (and decoded), best of 3
// trials.
//
//   bench_transport [--sizes-mib 1,64,256] [--port 47620]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <zmq.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/arguments.hpp"
#include "lorafed/adapter.hpp"
#include "lorafed/config.hpp"
#include "lorafed/error.hpp"
#include "src/allocator_tuning.hpp"
#include "src/plugin_registry.hpp"
#include "src/wire/codec.hpp"

namespace {

using Clock = std::chrono::steady_clock;
namespace wire = lorafed::wire;

constexpr std::int64_t kRank = 16;

wire::Envelope adapter_message(std::int64_t mib) {
  const std::int64_t n = mib * (1 << 20) / (2 * kRank * 4);
  wire::Envelope envelope{1, "client-0", wire::kServerId, wire::FitResBody{16, 100, {}}, {}};
  envelope.tensors.emplace("layer.lora_A", at::randn({kRank, n}));
  envelope.tensors.emplace("layer.lora_B", at::randn({n, kRank}));
  return envelope;
}

int reps_for(std::int64_t mib) {
  return mib <= 1 ? 400 : mib <= 64 ? 12 : 4;
}

// Framed: the transport plugin, the codec and the checks.
double framed_gb_per_s(lorafed::Transport& transport, const std::string& endpoint,
                       const wire::Envelope& envelope, int reps) {
  const std::int64_t n = envelope.tensors.at("layer.lora_A").size(1);
  const lorafed::ModelSpec spec{"bench", {{"layer", n, n}}, {}};
  auto server = transport.bind(endpoint);
  auto client = transport.connect(endpoint, "client-0");
  const wire::EncodeOptions encode;  // 4 MiB frames
  wire::DecodeLimits limits;
  limits.max_frame_bytes = encode.max_frame_bytes;
  std::uint64_t bytes = 0;
  // Warm up the connection.
  client->send(
      wire::encode(wire::Envelope{0, "client-0", wire::kServerId, wire::HeartbeatBody{}, {}}));
  while (!server->receive(std::chrono::milliseconds(100))) {
  }
  const auto started = Clock::now();
  std::thread sender([&] {
    at::set_num_threads(1);
    for (int i = 0; i < reps; ++i) client->send(wire::encode(envelope, encode));
  });
  for (int i = 0; i < reps; ++i) {
    std::optional<lorafed::Message> message;
    while (!(message = server->receive(std::chrono::milliseconds(1000)))) {
    }
    const wire::Envelope decoded = wire::decode(*message, limits);
    lorafed::validate_adapter(lorafed::adapter_from_named_tensors(decoded.tensors, 16), spec,
                              kRank);
    bytes += wire::message_bytes(*message);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  sender.join();
  return static_cast<double>(bytes) / seconds / 1e9;
}

// Raw: the same frames over bare cppzmq sockets with the same options.
double raw_gb_per_s(const std::string& endpoint, const lorafed::Message& frames, int reps) {
  zmq::context_t context(1);
  zmq::socket_t router(context, zmq::socket_type::router);
  zmq::socket_t dealer(context, zmq::socket_type::dealer);
  for (zmq::socket_t* socket : {&router, &dealer}) {
    socket->set(zmq::sockopt::sndhwm, 1000);
    socket->set(zmq::sockopt::rcvhwm, 1000);
  }
  dealer.set(zmq::sockopt::routing_id, "client-0");
  router.bind(endpoint);
  dealer.connect(endpoint);
  std::uint64_t bytes = 0;
  dealer.send(zmq::str_buffer("warm-up"), zmq::send_flags::none);
  {
    zmq::message_t part;
    (void)router.recv(part);
    (void)router.recv(part);
  }
  const auto started = Clock::now();
  std::thread sender([&] {
    for (int i = 0; i < reps; ++i) {
      for (std::size_t f = 0; f < frames.frames.size(); ++f) {
        const lorafed::Frame& frame = frames.frames[f];
        // Zero copy, as the transport sends tensor frames.
        zmq::message_t part(const_cast<std::byte*>(frame.data), frame.size, nullptr);
        dealer.send(
            part, f + 1 < frames.frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
      }
    }
  });
  for (int i = 0; i < reps; ++i) {
    zmq::message_t part;
    do {
      (void)router.recv(part);
      bytes += part.size();
    } while (router.get(zmq::sockopt::rcvmore));
    bytes -= std::string("client-0").size();  // the routing id part
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  sender.join();
  return static_cast<double>(bytes) / seconds / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  lorafed::bench::check_arguments(argc, argv,
                                  "bench_transport [--sizes-mib 1,64,256] [--port 47620]");
  std::vector<std::int64_t> sizes = {1, 64, 256};
  int port = 47620;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--sizes-mib") {
      sizes.clear();
      std::stringstream list(argv[i + 1]);
      for (std::string item; std::getline(list, item, ',');) sizes.push_back(std::stoll(item));
    } else if (flag == "--port") {
      port = std::stoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: bench_transport [--sizes-mib 1,64,256] [--port 47620]\n");
      return 2;
    }
  }
  at::set_num_threads(1);
  lorafed::keep_freed_memory_for_reuse();  // as `lorafed` does
  const lorafed::PluginRegistry registry({LORAFED_BUILD_PLUGIN_DIR});
  const auto plugin = registry.transport("zmq");
  // 256 MiB adapters travel as 64 frames of 4 MiB: the default part limit holds.
  auto transport = lorafed::keep_library_alive(
      plugin.factory->create(lorafed::ConfigTable::parse_string("", "bench")), plugin.factory);

  std::printf("%-10s %6s %10s %14s %12s %8s\n", "adapter", "reps", "frames", "framed GB/s",
              "raw GB/s", "ratio");
  for (const std::int64_t mib : sizes) {
    const wire::Envelope envelope = adapter_message(mib);
    const lorafed::Message frames = wire::encode(envelope);
    const int reps = reps_for(mib);
    const double framed =
        framed_gb_per_s(*transport, "tcp://127.0.0.1:" + std::to_string(port++), envelope, reps);
    const double raw = raw_gb_per_s("tcp://127.0.0.1:" + std::to_string(port++), frames, reps);
    std::printf("%-10s %6d %10zu %14.2f %12.2f %7.0f%%\n", (std::to_string(mib) + " MiB").c_str(),
                reps, frames.frames.size(), framed, raw, 100 * framed / raw);
    std::fflush(stdout);
  }
  return 0;
}
