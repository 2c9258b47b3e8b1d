#include "src/client/client_host.hpp"

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include "src/thread_pool.hpp"

namespace lorafed {
namespace {

// What a client that never heard from its broker should look at.
constexpr const char* kNoReplyHint =
    " (no reply from the broker yet: is it running at this endpoint, and is this client's key "
    "on its allowlist, curve_allowed_keys?)";

}  // namespace

ClientHost::ClientHost(std::vector<std::shared_ptr<VirtualClient>> clients, Channel& channel,
                       Options options, const RuntimeClock& clock, const std::atomic<bool>* stop)
    : channel_(channel), options_(options), clock_(clock), stop_(stop) {
  for (auto& client : clients) clients_.emplace(client->id(), std::move(client));
}

void ClientHost::send(const wire::Envelope& envelope) {
  send(wire::encode(envelope, options_.encode));
}

void ClientHost::send(Message message) {
  // A message the transport cannot take now (the broker is unreachable) is
  // dropped: registrations are sent again while the broker stays silent, and
  // the server closes a round without a result that never came.
  try {
    channel_.send(std::move(message));
  } catch (const std::exception& error) {
    spdlog::warn("could not send to the broker: {}{}", error.what(),
                 heard_anything_ ? "" : kNoReplyHint);
  }
}

void ClientHost::flush_outbox() {
  std::deque<Message> ready;
  {
    std::lock_guard lock(outbox_mutex_);
    ready.swap(outbox_);
  }
  for (Message& message : ready) send(std::move(message));
}

void ClientHost::register_all() {
  last_register_all_ = clock_.now();
  for (const auto& [id, client] : clients_) send(client->registration());
}

void ClientHost::send_heartbeat() {
  if (clients_.empty()) return;
  send(wire::Envelope{0, clients_.begin()->first, wire::kServerId, wire::HeartbeatBody{}, {}});
}

bool ClientHost::run() {
  // One LibTorch thread per worker: clients train in parallel, and a client's
  // numbers do not depend on how many others share the process.
  ThreadPool pool(options_.threads, [] { at::set_num_threads(1); });
  register_all();

  const auto started = clock_.now();
  auto last_heard = started;
  bool hinted = false;
  auto next_heartbeat = started + options_.heartbeat_interval;
  auto backoff = options_.reconnect_backoff;
  bool reconnecting = false;  // the broker fell silent; registering again after backoff
  auto next_registration = started;
  while (!stopping()) {
    flush_outbox();
    bool training;
    {
      std::lock_guard lock(outbox_mutex_);
      training = !in_flight_.empty();
    }
    // A worker's reply goes out when this thread next looks: within a
    // millisecond while clients train (a round waits for its last reply),
    // five when idle.
    std::optional<Message> message = channel_.receive(std::chrono::milliseconds(training ? 1 : 5));
    const auto now = clock_.now();
    if (now >= next_heartbeat) {
      if (!reconnecting) send_heartbeat();  // registrations go out instead
      next_heartbeat = now + options_.heartbeat_interval;
    }
    if (message) {
      if (reconnecting) spdlog::info("the broker answers again");
      last_heard = now;
      heard_anything_ = true;
      reconnecting = false;
      backoff = options_.reconnect_backoff;
      handle(std::move(*message), pool);
      continue;
    }
    bool idle;
    {
      std::lock_guard lock(outbox_mutex_);
      idle = in_flight_.empty();
    }
    if (now - last_heard > options_.server_silence_timeout && idle) {
      spdlog::error(
          "no message from the server for {}s (client.server_silence_timeout_s); giving up",
          std::chrono::duration_cast<std::chrono::seconds>(options_.server_silence_timeout)
              .count());
      flush_outbox();  // a reply finished just now still goes out
      return false;
    }
    if (!heard_anything_ && !hinted && now - started > options_.heartbeat_timeout) {
      // A broker answers every registration at once (its heartbeats): one
      // that says nothing did not let this client in.
      hinted = true;
      spdlog::warn("no reply from the broker after {}s{}",
                   std::chrono::duration_cast<std::chrono::seconds>(now - started).count(),
                   kNoReplyHint);
    }
    if (now - last_heard > options_.heartbeat_timeout) {
      if (!reconnecting && heard_anything_) {
        spdlog::warn(
            "nothing from the broker for {}s (broker.heartbeat_timeout_s); reconnecting (if this "
            "repeats, another client may be running under the same id)",
            std::chrono::duration_cast<std::chrono::seconds>(now - last_heard).count());
      }
      if (!reconnecting) {
        reconnecting = true;
        next_registration = now;
      }
      if (now >= next_registration) {
        register_all();
        next_registration = now + backoff;
        backoff = std::min(backoff * 2, options_.reconnect_backoff_max);
      }
    }
  }
  flush_outbox();
  if (options_.announce_leaving && !shutdown_ && stop_ != nullptr && stop_->load()) {
    for (const auto& [id, client] : clients_) {
      send(wire::Envelope{0,
                          id,
                          wire::kServerId,
                          wire::ErrorBody{wire::ErrorCode::kLeaving, "the client stopped"},
                          {}});
    }
  }
  return shutdown_;
}

void ClientHost::handle(const Message& message, ThreadPool& pool) {
  wire::Envelope envelope;
  try {
    envelope = wire::decode(message, options_.limits);
  } catch (const wire::DecodeError& error) {
    spdlog::warn("dropping an undecodable message from the server: {}", error.what());
    return;
  }
  if (std::holds_alternative<wire::FitInsBody>(envelope.body) ||
      std::holds_alternative<wire::EvaluateInsBody>(envelope.body)) {
    const auto client = clients_.find(envelope.recipient);
    if (client == clients_.end()) {
      spdlog::warn("instruction for '{}', which this host does not serve", envelope.recipient);
      return;
    }
    Task task{envelope.recipient, envelope.round, envelope.body.index()};
    {
      std::lock_guard lock(outbox_mutex_);
      // Rounds run one at a time: once the server asks for round R, no reply
      // of an earlier round can be asked for again (thousands of clients
      // each kept their last reply for good).
      std::erase_if(last_reply_, [&](const auto& entry) {
        return std::get<1>(entry.second.task) < envelope.round;
      });
      if (const auto last = last_reply_.find(envelope.recipient);
          last != last_reply_.end() && last->second.task == task) {
        spdlog::info("{}: {} of round {} came again; sending the same reply again",
                     envelope.recipient, wire::body_name(envelope.body), envelope.round);
        outbox_.push_back(last->second.reply);
        return;
      }
      if (!in_flight_.insert(task).second) {
        spdlog::debug("{}: {} of round {} is already being carried out", envelope.recipient,
                      wire::body_name(envelope.body), envelope.round);
        return;
      }
    }
    pool.submit([this, client = client->second, task, instruction = std::move(envelope)] {
      Message reply = wire::encode(client->handle(instruction), options_.encode);
      std::lock_guard lock(outbox_mutex_);
      last_reply_[std::get<0>(task)] = LastReply{task, reply};
      outbox_.push_back(std::move(reply));
      in_flight_.erase(task);
    });
    return;
  }
  std::visit(
      [&](const auto& body) {
        using Body = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<Body, wire::ShutdownBody>) {
          spdlog::info("server: shutdown ({})", body.reason);
          shutdown_ = true;
        } else if constexpr (std::is_same_v<Body, wire::ErrorBody>) {
          spdlog::warn("server error for '{}': {}", envelope.recipient, body.text);
          if (body.code == wire::ErrorCode::kRefused) {
            spdlog::error("{}: the server refuses it: {}", envelope.recipient, body.text);
            clients_.erase(envelope.recipient);
            if (clients_.empty()) {
              all_refused_ = true;
              stop_requested_ = true;
            }
          } else if (body.code == wire::ErrorCode::kNotRegistered) {
            // The broker keeps a connection's clients alive together, so it
            // lost them together (or restarted): all register again, at most
            // once a heartbeat interval; within it, just the one asked.
            if (clock_.now() - last_register_all_ >= options_.heartbeat_interval) {
              register_all();
            } else if (const auto client = clients_.find(envelope.recipient);
                       client != clients_.end()) {
              send(client->second->registration());
            }
          }
        } else if constexpr (std::is_same_v<Body, wire::ReconnectBody>) {
          register_all();
        }
      },
      envelope.body);
}

}  // namespace lorafed
