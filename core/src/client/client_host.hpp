#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lorafed/transport.hpp"
#include "src/client/virtual_client.hpp"
#include "src/wire/codec.hpp"

namespace lorafed {

// Serves one or more virtual clients over one channel to the server: a
// `lorafed client` process hosts one, `lorafed simulate` hosts all of them
// on a thread pool. The channel is used by the thread that calls run() only;
// workers hand their replies back through an outbox.
class ClientHost {
 public:
  struct Options {
    std::size_t threads = 1;
    wire::EncodeOptions encode;
    wire::DecodeLimits limits;
    std::chrono::milliseconds server_silence_timeout{600'000};
  };

  ClientHost(std::vector<std::shared_ptr<VirtualClient>> clients, Channel& channel,
             Options options);

  // Registers every client, then serves instructions until the server says
  // Shutdown (returns true) or stays silent past the timeout (returns false).
  bool run();
  // Makes run() return soon, from any thread (the simulation's server failed).
  void request_stop() { stop_requested_ = true; }

 private:
  void send(const wire::Envelope& envelope);
  void flush_outbox();

  std::map<std::string, std::shared_ptr<VirtualClient>> clients_;
  Channel& channel_;
  Options options_;
  std::mutex outbox_mutex_;
  std::deque<Message> outbox_;
  std::atomic<int> in_flight_{0};
  std::atomic<bool> stop_requested_{false};
};

}  // namespace lorafed
