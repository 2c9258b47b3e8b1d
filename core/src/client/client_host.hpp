#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "lorafed/transport.hpp"
#include "src/client/virtual_client.hpp"
#include "src/runtime_clock.hpp"
#include "src/wire/codec.hpp"

namespace lorafed {

class ThreadPool;

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
    // Heartbeats go out every interval, also while clients train. Nothing
    // heard from the broker for heartbeat_timeout: the clients register
    // again, after reconnect_backoff, doubling up to reconnect_backoff_max,
    // until the broker answers.
    std::chrono::milliseconds heartbeat_interval{1000};
    std::chrono::milliseconds heartbeat_timeout{10'000};
    std::chrono::milliseconds reconnect_backoff{500};
    std::chrono::milliseconds reconnect_backoff_max{10'000};
    // Nothing heard for this long (and nothing in training): give up.
    std::chrono::milliseconds server_silence_timeout{600'000};
    // Stopped by `stop` (SIGINT, SIGTERM), each client tells the broker it
    // leaves (Error(Leaving)), so the server fails it at once. A simulation's
    // host stops with its server and has nobody to tell.
    bool announce_leaving = false;
  };

  // `stop`, when given, ends run() soon once set (SIGINT, SIGTERM).
  ClientHost(std::vector<std::shared_ptr<VirtualClient>> clients, Channel& channel, Options options,
             const RuntimeClock& clock = RuntimeClock::steady(),
             const std::atomic<bool>* stop = nullptr);

  // Registers every client, then serves instructions until the server says
  // Shutdown (returns true) or stays silent past server_silence_timeout
  // (returns false). An instruction that arrives again (the broker or the
  // server repeats it after a reconnect) is not carried out twice: ignored
  // while in progress, answered with the same reply once done.
  bool run();
  // Makes run() return soon, from any thread (the simulation's server failed).
  void request_stop() { stop_requested_ = true; }
  // True once every client it served was refused by the server.
  bool all_refused() const { return all_refused_; }

 private:
  bool stopping() const {
    return shutdown_ || stop_requested_ || (stop_ != nullptr && stop_->load());
  }

  void send(const wire::Envelope& envelope);
  void send(Message message);
  void register_all();
  // One heartbeat for the connection: the broker keeps every client
  // registered on it alive while it hears from one of them.
  void send_heartbeat();
  void flush_outbox();
  void handle(const Message& message, ThreadPool& pool);

  std::map<std::string, std::shared_ptr<VirtualClient>> clients_;
  Channel& channel_;
  Options options_;
  std::mutex outbox_mutex_;
  std::deque<Message> outbox_;
  // (client id, round, kind): what an instruction asks of whom.
  using Task = std::tuple<std::string, std::uint32_t, std::size_t>;
  std::set<Task> in_flight_;  // under outbox_mutex_
  // Each client's last reply, sent again (not recomputed) when its
  // instruction comes again: the server repeats an instruction to a client
  // that registers again mid-round, whose reply a broker restart may have lost.
  struct LastReply {
    Task task;
    Message reply;
  };
  std::map<std::string, LastReply> last_reply_;  // under outbox_mutex_
  const RuntimeClock& clock_;
  const std::atomic<bool>* stop_;
  bool shutdown_ = false;
  bool all_refused_ = false;
  bool heard_anything_ = false;  // from the broker, since run() started
  RuntimeClock::time_point last_register_all_{};
  std::atomic<bool> stop_requested_{false};
};

}  // namespace lorafed
