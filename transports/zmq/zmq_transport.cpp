// The `zmq` transport: ROUTER (bound) and DEALER (connected) sockets, with
// optional CURVE encryption and a ZAP allowlist of client keys (README.md).
#include <spdlog/spdlog.h>

#include <zmq.hpp>

#include <sys/stat.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
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
  std::string server_public_key;                      // what a connecting side expects
  std::map<std::string, std::string> allowed;         // Z85 public key -> name: clients
  std::map<std::string, std::string> allowed_server;  // the same for a broker's server endpoint
};

// ZAP domains: which allowlist a bound socket's peers are checked against.
constexpr const char* kClientsDomain = "lorafed";
constexpr const char* kServerDomain = "lorafed-server";

bool is_inproc(const std::string& endpoint) {
  return endpoint.starts_with("inproc://");
}

// Answers ZeroMQ's authentication requests (ZAP, RFC 27) for every CURVE
// socket bound in one context: a client key in the allowlist is let in
// under its name, any other is refused and logged. Without a handler
// ZeroMQ would let every key in, so bound CURVE sockets keep it alive.
class ZapHandler {
 public:
  ZapHandler(std::shared_ptr<zmq::context_t> context, std::map<std::string, std::string> clients,
             std::map<std::string, std::string> server)
      : context_(std::move(context)),
        allowed_{{kClientsDomain, std::move(clients)}, {kServerDomain, std::move(server)}},
        socket_(*context_, ZMQ_REP) {
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
      try {
        zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) == 0) continue;
        std::vector<zmq::message_t> request;
        do {
          zmq::message_t part;
          if (!socket_.recv(part)) break;
          request.push_back(std::move(part));
        } while (socket_.get(zmq::sockopt::rcvmore));
        answer(request);
      } catch (const zmq::error_t& error) {
        // A signal interrupted a call (EINTR): the loop goes on. Anything
        // else ends authentication, and with it every new connection.
        if (error.num() != EINTR) {
          spdlog::error("zmq: the authentication thread stopped: {}", error.what());
          break;
        }
      }
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
      // The socket's domain says which side it serves: a client key never
      // passes on the server's endpoint, nor the server's on the clients'.
      const std::string domain = request[2].to_string();
      const bool server_side = domain == kServerDomain;
      const auto list = allowed_.find(domain);
      const auto found = list == allowed_.end()
                             ? std::map<std::string, std::string>::const_iterator{}
                             : list->second.find(z85);
      if (list != allowed_.end() && found != list->second.end()) {
        status = "200";
        text = "OK";
        user = found->second;
        spdlog::debug("zmq: let in '{}' from {}", user, address);
      } else {
        text = "key not allowed";
        spdlog::warn(
            "zmq: refused a connection from {} to the {} endpoint: its CURVE key {} is not in {}",
            address, server_side ? "server" : "clients'", z85,
            server_side ? "curve_allowed_server_key" : "curve_allowed_keys");
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
  std::map<std::string, std::map<std::string, std::string>> allowed_;  // by ZAP domain
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

  // Every ZeroMQ error leaves as a lorafed::Error (transport.hpp: no
  // exception of this library's types may outlive it); a signal that
  // interrupts a call (EINTR) is no error: the caller's loop looks at its
  // stop flag and calls again.
  void send(Message message) override {
    try {
      send_parts(message);
    } catch (const zmq::error_t& error) {
      throw lorafed::Error(std::string("zmq transport: send failed: ") + error.what());
    }
  }

  std::optional<Message> receive(std::chrono::milliseconds timeout) override {
    try {
      return receive_parts(timeout);
    } catch (const zmq::error_t& error) {
      if (error.num() == EINTR) return std::nullopt;
      throw lorafed::Error(std::string("zmq transport: receive failed: ") + error.what());
    }
  }

  void close() override {
    if (socket_) socket_.close();
  }

 private:
  void send_parts(const Message& message) {
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

  std::optional<Message> receive_parts(std::chrono::milliseconds timeout) {
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
        if (routed_ && message.frames.empty()) {
          // The key name ZAP let this connection in under (CURVE only).
          if (const char* user = zmq_msg_gets(part.handle(), "User-Id")) {
            message.authenticated_as = user;
          }
        }
        message.frames.push_back(from_zmq(std::move(part)));
      }
      first = false;
    } while (socket_.get(zmq::sockopt::rcvmore));
    return message;
  }

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

  std::unique_ptr<lorafed::Channel> bind(const std::string& endpoint,
                                         lorafed::Peers peers) override {
    const bool for_server = peers == lorafed::Peers::kServer;
    const bool curve = options_.own_keys && !is_inproc(endpoint);
    if (curve && !for_server && options_.allowed.empty()) {
      throw lorafed::ConfigError(
          "zmq transport: binding '" + endpoint +
          "' with CURVE needs [transport] curve_allowed_keys, a folder of the clients' NAME.pub");
    }
    if (curve && for_server && options_.allowed_server.empty()) {
      throw lorafed::ConfigError("zmq transport: binding the server's endpoint '" + endpoint +
                                 "' with CURVE needs [transport] curve_allowed_server_key, the "
                                 "server's NAME.pub (only that key may act as the server)");
    }
    if (curve && !zap_) {
      zap_ = std::make_shared<ZapHandler>(context_, options_.allowed, options_.allowed_server);
    }
    auto channel = std::make_unique<ZmqChannel>(context_, zmq::socket_type::router, options_,
                                                curve ? zap_ : nullptr);
    // A client that reconnects under the same identity takes over its old
    // route. The server's endpoint has one peer: a second connection under
    // the server's identity is refused while the first one stands.
    channel->socket().set(zmq::sockopt::router_handover, for_server ? 0 : 1);
    if (curve) {
      channel->socket().set(zmq::sockopt::curve_server, 1);
      channel->socket().set(zmq::sockopt::curve_secretkey, options_.own_keys->secret_key);
      channel->socket().set(zmq::sockopt::zap_domain, for_server ? kServerDomain : kClientsDomain);
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

  bool crosses_processes() const override { return true; }

 private:
  ZmqOptions options_;
  std::shared_ptr<zmq::context_t> context_;
  std::shared_ptr<ZapHandler> zap_;  // started by the first CURVE bind
};

// Creates a file that must not exist yet, readable per `mode`: a key someone
// may already have handed out is never replaced.
void write_new_file(const std::filesystem::path& path, const std::string& text, mode_t mode) {
  if (std::filesystem::exists(path)) {
    throw lorafed::Error("'" + path.string() + "' exists; remove it or choose another name");
  }
  const mode_t old_mask = ::umask(0777 & ~mode);
  std::ofstream file(path, std::ios::out | std::ios::trunc);
  ::umask(old_mask);
  if (!file) throw lorafed::Error("cannot write '" + path.string() + "'");
  file << text;
  file.close();
  if (!file) throw lorafed::Error("writing '" + path.string() + "' failed");
}

class ZmqTransportFactory final : public lorafed::TransportFactory {
 public:
  // A CURVE key pair as small TOML files of Z85 keys (README.md, "CURVE").
  std::string write_key_pair(const std::string& stem) const override {
    if (zmq_has("curve") == 0) throw lorafed::Error("this libzmq was built without CURVE support");
    std::array<char, 41> public_key{};
    std::array<char, 41> secret_key{};
    if (zmq_curve_keypair(public_key.data(), secret_key.data()) != 0) {
      throw lorafed::Error(std::string("zmq_curve_keypair failed: ") + zmq_strerror(zmq_errno()));
    }
    const std::filesystem::path base(stem);
    if (base.has_parent_path()) std::filesystem::create_directories(base.parent_path());
    const std::filesystem::path secret_path = stem + ".key";
    const std::filesystem::path public_path = stem + ".pub";
    const std::string public_line = "public = \"" + std::string(public_key.data()) + "\"\n";
    write_new_file(secret_path,
                   "# lorafed CURVE key pair (zmq transport). Secret: keep it on this machine.\n" +
                       public_line + "secret = \"" + std::string(secret_key.data()) + "\"\n",
                   0600);
    write_new_file(public_path,
                   "# lorafed CURVE public key: give this file to the other side.\n" + public_line,
                   0644);
    return "wrote " + secret_path.string() + " (secret, mode 600) and " + public_path.string() +
           "\npublic key " + public_key.data();
  }

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
    const auto allowed_server = config.get<std::string>("curve_allowed_server_key", "");
    if (own.empty()) {
      if (!server.empty() || !allowed.empty() || !allowed_server.empty()) {
        lorafed::throw_config_error(config, "curve_secret_key",
                                    "is needed with curve_server_key, curve_allowed_keys or "
                                    "curve_allowed_server_key");
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
    if (!allowed_server.empty()) {
      const std::filesystem::path path(allowed_server);
      const std::string public_key = read_key_file(path, false).public_key;
      if (options.allowed.contains(public_key)) {
        lorafed::throw_config_error(config, "curve_allowed_server_key",
                                    "'" + allowed_server +
                                        "' is also a client key in curve_allowed_keys: the "
                                        "server needs a key pair of its own");
      }
      options.allowed_server.emplace(public_key, path.stem().string());
    }
  }
};

}  // namespace

LORAFED_TRANSPORT_PLUGIN("zmq", "0.1.0", ZmqTransportFactory)
