#include "lorafed/in_process_channels.hpp"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>

#include "lorafed/error.hpp"

namespace lorafed {
namespace {

class Mailbox {
 public:
  void push(Message message) {
    {
      std::lock_guard lock(mutex_);
      if (closed_) return;
      queue_.push_back(std::move(message));
    }
    ready_.notify_one();
  }
  std::optional<Message> pop(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    if (!ready_.wait_for(lock, timeout, [this] { return !queue_.empty(); })) return std::nullopt;
    Message message = std::move(queue_.front());
    queue_.pop_front();
    return message;
  }
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    queue_.clear();
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Message> queue_;
  bool closed_ = false;
};

// What is bound at one endpoint: the bound side's mailbox and its peers'.
struct Hub {
  Mailbox bound;
  std::mutex peers_mutex;
  std::map<std::string, std::shared_ptr<Mailbox>> peers;
};

// The endpoints of this process (liblorafed is loaded once per process).
std::mutex registry_mutex;
std::map<std::string, std::weak_ptr<Hub>> registry;

class BoundChannel final : public Channel {
 public:
  BoundChannel(std::string endpoint, std::shared_ptr<Hub> hub)
      : endpoint_(std::move(endpoint)), hub_(std::move(hub)) {}
  ~BoundChannel() override { close(); }

  void send(Message message) override {
    std::shared_ptr<Mailbox> peer;
    {
      std::lock_guard lock(hub_->peers_mutex);
      const auto found = hub_->peers.find(message.peer);
      if (found != hub_->peers.end()) peer = found->second;
    }
    if (!peer) {
      spdlog::debug("{}: no peer '{}', message dropped", endpoint_, message.peer);
      return;
    }
    peer->push(std::move(message));
  }
  std::optional<Message> receive(std::chrono::milliseconds timeout) override {
    return hub_->bound.pop(timeout);
  }
  void close() override {
    if (!hub_) return;
    hub_->bound.close();
    std::lock_guard lock(registry_mutex);
    registry.erase(endpoint_);
    hub_.reset();
  }

 private:
  std::string endpoint_;
  std::shared_ptr<Hub> hub_;
};

class ConnectedChannel final : public Channel {
 public:
  ConnectedChannel(std::string identity, std::shared_ptr<Hub> hub, std::shared_ptr<Mailbox> inbox)
      : identity_(std::move(identity)), hub_(std::move(hub)), inbox_(std::move(inbox)) {}
  ~ConnectedChannel() override { close(); }

  void send(Message message) override {
    message.peer = identity_;
    hub_->bound.push(std::move(message));
  }
  std::optional<Message> receive(std::chrono::milliseconds timeout) override {
    return inbox_->pop(timeout);
  }
  void close() override {
    if (!inbox_) return;
    inbox_->close();
    std::lock_guard lock(hub_->peers_mutex);
    if (hub_->peers[identity_] == inbox_) hub_->peers.erase(identity_);
    inbox_.reset();
  }

 private:
  std::string identity_;
  std::shared_ptr<Hub> hub_;
  std::shared_ptr<Mailbox> inbox_;
};

}  // namespace

std::unique_ptr<Channel> bind_in_process(const std::string& endpoint) {
  std::lock_guard lock(registry_mutex);
  if (!registry[endpoint].expired()) {
    throw Error("endpoint '" + endpoint + "' is already bound in this process");
  }
  auto hub = std::make_shared<Hub>();
  registry[endpoint] = hub;
  return std::make_unique<BoundChannel>(endpoint, std::move(hub));
}

std::unique_ptr<Channel> connect_in_process(const std::string& endpoint,
                                            const std::string& identity) {
  std::shared_ptr<Hub> hub;
  {
    std::lock_guard lock(registry_mutex);
    hub = registry[endpoint].lock();
  }
  if (!hub) throw Error("nothing is bound at '" + endpoint + "' in this process");
  auto inbox = std::make_shared<Mailbox>();
  {
    std::lock_guard lock(hub->peers_mutex);
    hub->peers[identity] = inbox;  // a reconnect under the same identity takes over
  }
  return std::make_unique<ConnectedChannel>(identity, std::move(hub), std::move(inbox));
}

}  // namespace lorafed
