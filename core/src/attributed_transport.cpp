#include "src/attributed_transport.hpp"

#include "lorafed/error.hpp"

namespace lorafed {
namespace {

// Runs `call`; an exception that is not the SDK's own is replaced by an
// Error carrying a copy of its message.
template <class Call>
auto attributed(const std::string& who, const char* what, Call call) {
  try {
    return call();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& error) {
    throw Error(who + ": " + what + " failed: " + error.what());
  } catch (...) {
    throw Error(who + ": " + what + " threw a non-standard exception");
  }
}

class AttributedChannel final : public Channel {
 public:
  AttributedChannel(std::unique_ptr<Channel> channel, std::shared_ptr<Transport> transport,
                    std::string who)
      : transport_(std::move(transport)), channel_(std::move(channel)), who_(std::move(who)) {}
  ~AttributedChannel() override {
    try {
      channel_->close();
    } catch (...) {
      // Closing is best effort on the way out.
    }
  }

  void send(Message message) override {
    attributed(who_, "send", [&] { channel_->send(std::move(message)); });
  }
  std::optional<Message> receive(std::chrono::milliseconds timeout) override {
    return attributed(who_, "receive", [&] { return channel_->receive(timeout); });
  }
  void close() override {
    attributed(who_, "close", [&] { channel_->close(); });
  }

 private:
  std::shared_ptr<Transport> transport_;  // declared first: destroyed after the channel
  std::unique_ptr<Channel> channel_;
  std::string who_;
};

class AttributedTransport final : public Transport {
 public:
  AttributedTransport(std::shared_ptr<Transport> transport, std::string plugin_name)
      : transport_(std::move(transport)), who_("transport '" + plugin_name + "'") {}

  std::unique_ptr<Channel> bind(const std::string& endpoint, Peers peers) override {
    auto channel = attributed(who_, "bind", [&] { return transport_->bind(endpoint, peers); });
    return std::make_unique<AttributedChannel>(std::move(channel), transport_, who_);
  }
  std::unique_ptr<Channel> connect(const std::string& endpoint,
                                   const std::string& identity) override {
    auto channel =
        attributed(who_, "connect", [&] { return transport_->connect(endpoint, identity); });
    return std::make_unique<AttributedChannel>(std::move(channel), transport_, who_);
  }
  bool crosses_processes() const override { return transport_->crosses_processes(); }
  std::optional<ProcessGroup> process_group() override {
    return attributed(who_, "process_group", [&] { return transport_->process_group(); });
  }

 private:
  std::shared_ptr<Transport> transport_;
  std::string who_;
};

}  // namespace

std::shared_ptr<Transport> attribute_transport(std::shared_ptr<Transport> transport,
                                               std::string plugin_name) {
  return std::make_shared<AttributedTransport>(std::move(transport), std::move(plugin_name));
}

}  // namespace lorafed
