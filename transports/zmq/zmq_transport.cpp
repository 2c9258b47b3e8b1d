// The `zmq` transport: ROUTER (bound) and DEALER (connected) sockets, with
// optional CURVE encryption and a ZAP allowlist of client keys (README.md).
#include <spdlog/spdlog.h>

#include <zmq.hpp>

#include <atomic>
#include <filesystem>
#include <map>
#include <thread>

#include "lorafed/error.hpp"
#include "lorafed/plugin.hpp"

namespace {

using lorafed::Frame;
using lorafed::Message;

// A CURVE key pair or public key as `lorafed keygen` writes them.
struct CurveKeys {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // empty in a .pub file
};

CurveKeys read_key_file(const std::filesystem::path& path, bool need_secret) {
  const lorafed::ConfigTable file = lorafed::ConfigTable::parse_file(path);
  CurveKeys keys{file.require<std::string>("public"), file.get<std::string>("secret", "")};
  if (keys.public_key.size() != 40 || (need_secret && keys.secret_key.size() != 40)) {
    throw lorafed::ConfigError("'" + path.string() + "' is not a key file from `lorafed keygen`" +
                               (need_secret ? " with a secret key (NAME.key)" : ""));
  }
  return keys;
}

struct ZmqOptions {
  std::int64_t max_part_bytes = 64 << 20;
  int high_water_mark = 1000;
  int linger_ms = 2000;
  int send_timeout_ms = 5000;
  int reconnect_ms = 100;
  int reconnect_max_ms = 5000;
  // CURVE: off when own_keys is unset.
  std::optional<CurveKeys> own_keys;
  std::string server_public_key;               // what a connecting side expects
  std::map<std::string, std::string> allowed;  // Z85 public key -> name, for binding sides
};

bool is_inproc(const std::string& endpoint) {
  return endpoint.starts_with("inproc://");
}

// Answers ZeroMQ's authentication requests (ZAP, RFC 27) for every CURVE
// socket bound in one context: a client key in the allowlist is let in
// under its name, any other is refused and logged. Without a handler
// ZeroMQ would let every key in, so bound CURVE sockets keep it alive.
class ZapHandler {
 public:
  ZapHandler(std::shared_ptr<zmq::context_t> context, std::map<std::string, std::string> allowed)
      : context_(std::move(context)), allowed_(std::move(allowed)), socket_(*context_, ZMQ_REP) {
    socket_.bind("inproc://zeromq.zap.01");
    thread_ = std::thread([this] { serve(); });
  }
  ~ZapHandler() {
    stop_ = true;
    thread_.join();
  }

 private:
  void serve() {
    while (!stop_) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) == 0) continue;
      std::vector<zmq::message_t> request;
      do {
        zmq::message_t part;
        if (!socket_.recv(part)) break;
        request.push_back(std::move(part));
      } while (socket_.get(zmq::sockopt::rcvmore));
      answer(request);
    }
    socket_.close();
  }

  void answer(const std::vector<zmq::message_t>& request) {
    // version, request id, domain, address, identity, mechanism, credentials...
    std::string status = "400", text = "malformed ZAP request", user;
    if (request.size() >= 7 && request[5].to_string() == "CURVE" && request[6].size() == 32) {
      char z85[41] = {};
      zmq_z85_encode(z85, static_cast<const std::uint8_t*>(request[6].data()), 32);
      const std::string address = request[3].to_string();
      if (const auto found = allowed_.find(z85); found != allowed_.end()) {
        status = "200";
        text = "OK";
        user = found->second;
        spdlog::debug("zmq: let in '{}' from {}", user, address);
      } else {
        text = "key not allowed";
        spdlog::warn(
            "zmq: refused a connection from {}: its CURVE key {} is not in "
            "curve_allowed_keys",
            address, z85);
      }
    } else if (request.size() >= 6) {
      text = "only CURVE is accepted";
      spdlog::warn("zmq: refused a {} connection: CURVE is required", request[5].to_string());
    }
    const std::string request_id = request.size() > 1 ? request[1].to_string() : "";
    for (const std::string& part : {std::string("1.0"), request_id, status, text, user}) {
      socket_.send(zmq::buffer(part), zmq::send_flags::sndmore);
    }
    socket_.send(zmq::str_buffer(""), zmq::send_flags::none);  // metadata
  }

  std::shared_ptr<zmq::context_t> context_;
  std::map<std::string, std::string> allowed_;
  zmq::socket_t socket_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
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
             const ZmqOptions& options, std::shared_ptr<ZapHandler> zap = nullptr)
      : context_(std::move(context)),
        zap_(std::move(zap)),
        socket_(*context_, type),
        routed_(type == zmq::socket_type::router),
        send_timeout_ms_(options.send_timeout_ms) {
    socket_.set(zmq::sockopt::maxmsgsize, options.max_part_bytes);
    socket_.set(zmq::sockopt::sndhwm, options.high_water_mark);
    socket_.set(zmq::sockopt::rcvhwm, options.high_water_mark);
    socket_.set(zmq::sockopt::linger, options.linger_ms);
    socket_.set(zmq::sockopt::sndtimeo, options.send_timeout_ms);
    socket_.set(zmq::sockopt::reconnect_ivl, options.reconnect_ms);
    socket_.set(zmq::sockopt::reconnect_ivl_max, options.reconnect_max_ms);
  }
  ~ZmqChannel() override { close(); }

  zmq::socket_t& socket() { return socket_; }

  void send(Message message) override {
    if (message.frames.empty())
      throw lorafed::Error("zmq transport: cannot send a message with no frames");
    // ZeroMQ takes a multi-part message whole or not at all: only the first
    // part can time out (no connection, or the queue is full).
    bool accepted = true;
    if (routed_) {
      accepted = socket_.send(zmq::buffer(message.peer), zmq::send_flags::sndmore).has_value();
    }
    for (std::size_t i = 0; accepted && i < message.frames.size(); ++i) {
      const bool last = i + 1 == message.frames.size();
      accepted = socket_
                     .send(to_zmq(message.frames[i]),
                           last ? zmq::send_flags::none : zmq::send_flags::sndmore)
                     .has_value();
    }
    if (!accepted) {
      throw lorafed::Error("zmq transport: message not accepted within send_timeout_ms = " +
                           std::to_string(send_timeout_ms_) +
                           " (no connection to the peer, or its queue is full)");
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
  std::shared_ptr<ZapHandler> zap_;          // authenticates while the socket is bound
  zmq::socket_t socket_;
  bool routed_;
  int send_timeout_ms_;
};

class ZmqTransport final : public lorafed::Transport {
 public:
  explicit ZmqTransport(ZmqOptions options)
      : options_(options), context_(std::make_shared<zmq::context_t>(1)) {}

  std::unique_ptr<lorafed::Channel> bind(const std::string& endpoint) override {
    const bool curve = options_.own_keys && !is_inproc(endpoint);
    if (curve && options_.allowed.empty()) {
      throw lorafed::ConfigError(
          "zmq transport: binding '" + endpoint +
          "' with CURVE needs [transport] curve_allowed_keys, a folder of the peers' NAME.pub");
    }
    if (curve && !zap_) zap_ = std::make_shared<ZapHandler>(context_, options_.allowed);
    auto channel = std::make_unique<ZmqChannel>(context_, zmq::socket_type::router, options_,
                                                curve ? zap_ : nullptr);
    // A client that reconnects under the same identity takes over its old route.
    channel->socket().set(zmq::sockopt::router_handover, 1);
    if (curve) {
      channel->socket().set(zmq::sockopt::curve_server, 1);
      channel->socket().set(zmq::sockopt::curve_secretkey, options_.own_keys->secret_key);
      channel->socket().set(zmq::sockopt::zap_domain, "lorafed");
    }
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
    if (options_.own_keys && !is_inproc(endpoint)) {
      if (options_.server_public_key.empty()) {
        throw lorafed::ConfigError("zmq transport: connecting to '" + endpoint +
                                   "' with CURVE needs [transport] curve_server_key, the "
                                   "broker's NAME.pub");
      }
      channel->socket().set(zmq::sockopt::curve_serverkey, options_.server_public_key);
      channel->socket().set(zmq::sockopt::curve_publickey, options_.own_keys->public_key);
      channel->socket().set(zmq::sockopt::curve_secretkey, options_.own_keys->secret_key);
    }
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
  std::shared_ptr<ZapHandler> zap_;  // started by the first CURVE bind
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
    options.send_timeout_ms =
        static_cast<int>(config.get<std::int64_t>("send_timeout_ms", options.send_timeout_ms));
    if (options.send_timeout_ms < 0)
      lorafed::throw_config_error(config, "send_timeout_ms", "must not be negative");
    read_curve_options(config, options);
    return std::make_unique<ZmqTransport>(options);
  }

 private:
  // curve_secret_key: this side's NAME.key (turns CURVE on);
  // curve_server_key: the binding side's NAME.pub (to connect);
  // curve_allowed_keys: a folder of client NAME.pub files (to bind).
  static void read_curve_options(const lorafed::ConfigTable& config, ZmqOptions& options) {
    const auto own = config.get<std::string>("curve_secret_key", "");
    const auto server = config.get<std::string>("curve_server_key", "");
    const auto allowed = config.get<std::string>("curve_allowed_keys", "");
    if (own.empty()) {
      if (!server.empty() || !allowed.empty()) {
        lorafed::throw_config_error(config, "curve_secret_key",
                                    "is needed with curve_server_key or curve_allowed_keys");
      }
      return;
    }
    if (zmq_has("curve") == 0) {
      lorafed::throw_config_error(config, "curve_secret_key",
                                  "this libzmq was built without CURVE");
    }
    options.own_keys = read_key_file(own, /*need_secret=*/true);
    if (!server.empty()) options.server_public_key = read_key_file(server, false).public_key;
    if (!allowed.empty()) {
      if (!std::filesystem::is_directory(allowed)) {
        lorafed::throw_config_error(config, "curve_allowed_keys",
                                    "'" + allowed + "' is not a folder of NAME.pub files");
      }
      for (const auto& entry : std::filesystem::directory_iterator(allowed)) {
        if (entry.path().extension() != ".pub") continue;
        options.allowed.emplace(read_key_file(entry.path(), false).public_key,
                                entry.path().stem().string());
      }
      spdlog::info("zmq: CURVE on; {} client key(s) allowed from {}", options.allowed.size(),
                   allowed);
    }
  }
};

}  // namespace

LORAFED_TRANSPORT_PLUGIN("zmq", "0.1.0", ZmqTransportFactory)
