#include "src/client/client_host.hpp"

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include "src/thread_pool.hpp"

namespace lorafed {

ClientHost::ClientHost(std::vector<std::shared_ptr<VirtualClient>> clients, Channel& channel,
                       Options options)
    : channel_(channel), options_(options) {
  for (auto& client : clients) clients_.emplace(client->id(), std::move(client));
}

void ClientHost::send(const wire::Envelope& envelope) {
  channel_.send(wire::encode(envelope, options_.encode));
}

void ClientHost::flush_outbox() {
  std::deque<Message> ready;
  {
    std::lock_guard lock(outbox_mutex_);
    ready.swap(outbox_);
  }
  for (Message& message : ready) channel_.send(std::move(message));
}

bool ClientHost::run() {
  // One LibTorch thread per worker: clients train in parallel, and a client's
  // numbers do not depend on how many others share the process.
  ThreadPool pool(options_.threads, [] { at::set_num_threads(1); });
  for (const auto& [id, client] : clients_) send(client->registration());

  auto last_heard = std::chrono::steady_clock::now();
  bool shutdown = false;
  while (!shutdown && !stop_requested_) {
    flush_outbox();
    std::optional<Message> message = channel_.receive(std::chrono::milliseconds(5));
    if (!message) {
      if (std::chrono::steady_clock::now() - last_heard > options_.server_silence_timeout &&
          in_flight_ == 0) {
        spdlog::error(
            "no message from the server for {}s (client.server_silence_timeout_s); giving up",
            std::chrono::duration_cast<std::chrono::seconds>(options_.server_silence_timeout)
                .count());
        return false;
      }
      continue;
    }
    last_heard = std::chrono::steady_clock::now();
    wire::Envelope envelope;
    try {
      envelope = wire::decode(*message, options_.limits);
    } catch (const wire::DecodeError& error) {
      spdlog::warn("dropping an undecodable message from the server: {}", error.what());
      continue;
    }
    if (std::holds_alternative<wire::FitInsBody>(envelope.body) ||
        std::holds_alternative<wire::EvaluateInsBody>(envelope.body)) {
      const auto client = clients_.find(envelope.recipient);
      if (client == clients_.end()) {
        spdlog::warn("instruction for '{}', which this host does not serve", envelope.recipient);
        continue;
      }
      ++in_flight_;
      pool.submit([this, client = client->second, instruction = std::move(envelope)] {
        Message reply = wire::encode(client->handle(instruction), options_.encode);
        {
          std::lock_guard lock(outbox_mutex_);
          outbox_.push_back(std::move(reply));
        }
        --in_flight_;
      });
      continue;
    }
    std::visit(
        [&](const auto& body) {
          using Body = std::decay_t<decltype(body)>;
          if constexpr (std::is_same_v<Body, wire::ShutdownBody>) {
            spdlog::info("server: shutdown ({})", body.reason);
            shutdown = true;
          } else if constexpr (std::is_same_v<Body, wire::ErrorBody>) {
            spdlog::warn("server error for '{}': {}", envelope.recipient, body.text);
            if (body.code == wire::ErrorCode::kNotRegistered) {
              if (const auto client = clients_.find(envelope.recipient); client != clients_.end()) {
                send(client->second->registration());
              }
            }
          } else if constexpr (std::is_same_v<Body, wire::ReconnectBody>) {
            for (const auto& [id, client] : clients_) send(client->registration());
          }
        },
        envelope.body);
  }
  flush_outbox();
  return true;
}

}  // namespace lorafed
