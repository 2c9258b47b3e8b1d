// The `zmq` transport: ROUTER (server) and DEALER (client) sockets.
#include <spdlog/spdlog.h>

#include <zmq.hpp>

#include "lorafed/error.hpp"
#include "lorafed/plugin.hpp"

namespace {

using lorafed::Frame;
using lorafed::Message;

struct ZmqOptions {
  std::int64_t max_part_bytes = 64 << 20;
  int high_water_mark = 1000;
  int linger_ms = 2000;
};

void release_owner(void*, void* hint) {
  delete static_cast<std::shared_ptr<const void>*>(hint);
}

zmq::message_t to_zmq(const Frame& frame) {
  if (!frame.owner) return zmq::message_t(frame.data, frame.size);
  // Zero copy: ZeroMQ keeps the frame's owner until its I/O thread is done.
  auto* hint = new std::shared_ptr<const void>(frame.owner);
  return zmq::message_t(const_cast<std::byte*>(frame.data), frame.size, release_owner, hint);
}

Frame from_zmq(zmq::message_t&& part) {
  auto owned = std::make_shared<zmq::message_t>(std::move(part));
  return Frame{static_cast<const std::byte*>(owned->data()), owned->size(), owned};
}

class ZmqChannel final : public lorafed::Channel {
 public:
  ZmqChannel(std::shared_ptr<zmq::context_t> context, zmq::socket_type type,
             const ZmqOptions& options)
      : context_(std::move(context)),
        socket_(*context_, type),
        routed_(type == zmq::socket_type::router) {
    socket_.set(zmq::sockopt::maxmsgsize, options.max_part_bytes);
    socket_.set(zmq::sockopt::sndhwm, options.high_water_mark);
    socket_.set(zmq::sockopt::rcvhwm, options.high_water_mark);
    socket_.set(zmq::sockopt::linger, options.linger_ms);
  }
  ~ZmqChannel() override { close(); }

  zmq::socket_t& socket() { return socket_; }

  void send(Message message) override {
    if (message.frames.empty())
      throw lorafed::Error("zmq transport: cannot send a message with no frames");
    if (routed_) socket_.send(zmq::buffer(message.peer), zmq::send_flags::sndmore);
    for (std::size_t i = 0; i < message.frames.size(); ++i) {
      const bool last = i + 1 == message.frames.size();
      socket_.send(to_zmq(message.frames[i]),
                   last ? zmq::send_flags::none : zmq::send_flags::sndmore);
    }
  }

  std::optional<Message> receive(std::chrono::milliseconds timeout) override {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
    Message message;
    bool first = true;
    do {
      zmq::message_t part;
      if (!socket_.recv(part, zmq::recv_flags::none)) return std::nullopt;
      if (routed_ && first) {
        message.peer = part.to_string();
      } else {
        message.frames.push_back(from_zmq(std::move(part)));
      }
      first = false;
    } while (socket_.get(zmq::sockopt::rcvmore));
    return message;
  }

  void close() override {
    if (socket_) socket_.close();
  }

 private:
  std::shared_ptr<zmq::context_t> context_;  // outlives the socket
  zmq::socket_t socket_;
  bool routed_;
};

class ZmqTransport final : public lorafed::Transport {
 public:
  explicit ZmqTransport(ZmqOptions options)
      : options_(options), context_(std::make_shared<zmq::context_t>(1)) {}

  std::unique_ptr<lorafed::Channel> bind(const std::string& endpoint) override {
    auto channel = std::make_unique<ZmqChannel>(context_, zmq::socket_type::router, options_);
    // A client that reconnects under the same identity takes over its old route.
    channel->socket().set(zmq::sockopt::router_handover, 1);
    try {
      channel->socket().bind(endpoint);
    } catch (const zmq::error_t& error) {
      throw lorafed::Error("zmq transport: cannot bind '" + endpoint + "': " + error.what() +
                           " (is another server using it? change [transport] endpoint)");
    }
    return channel;
  }

  std::unique_ptr<lorafed::Channel> connect(const std::string& endpoint,
                                            const std::string& identity) override {
    auto channel = std::make_unique<ZmqChannel>(context_, zmq::socket_type::dealer, options_);
    channel->socket().set(zmq::sockopt::routing_id, identity);
    try {
      channel->socket().connect(endpoint);
    } catch (const zmq::error_t& error) {
      throw lorafed::Error("zmq transport: cannot connect to '" + endpoint + "': " + error.what());
    }
    return channel;
  }

 private:
  ZmqOptions options_;
  std::shared_ptr<zmq::context_t> context_;
};

class ZmqTransportFactory final : public lorafed::TransportFactory {
 public:
  std::unique_ptr<lorafed::Transport> create(const lorafed::ConfigTable& config) const override {
    ZmqOptions options;
    options.max_part_bytes = config.get<std::int64_t>("max_part_bytes", options.max_part_bytes);
    if (options.max_part_bytes < 1024) {
      lorafed::throw_config_error(config, "max_part_bytes", "must be at least 1024");
    }
    options.high_water_mark =
        static_cast<int>(config.get<std::int64_t>("high_water_mark", options.high_water_mark));
    if (options.high_water_mark < 1)
      lorafed::throw_config_error(config, "high_water_mark", "must be positive");
    options.linger_ms = static_cast<int>(config.get<std::int64_t>("linger_ms", options.linger_ms));
    if (options.linger_ms < 0)
      lorafed::throw_config_error(config, "linger_ms", "must not be negative");
    return std::make_unique<ZmqTransport>(options);
  }
};

}  // namespace

LORAFED_TRANSPORT_PLUGIN("zmq", "0.1.0", ZmqTransportFactory)
