// The `inproc` transport: mailboxes in one process, frames shared by owner
// (the SDK's in-process channels).
#include "lorafed/error.hpp"
#include "lorafed/in_process_channels.hpp"
#include "lorafed/plugin.hpp"

namespace {

class InprocTransport final : public lorafed::Transport {
 public:
  // Everyone in the process is trusted alike: `peers` changes nothing.
  std::unique_ptr<lorafed::Channel> bind(const std::string& endpoint, lorafed::Peers) override {
    try {
      return lorafed::bind_in_process(endpoint);
    } catch (const lorafed::Error& error) {
      throw lorafed::Error(std::string("inproc transport: ") + error.what());
    }
  }

  std::unique_ptr<lorafed::Channel> connect(const std::string& endpoint,
                                            const std::string& identity) override {
    try {
      return lorafed::connect_in_process(endpoint, identity);
    } catch (const lorafed::Error& error) {
      throw lorafed::Error(std::string("inproc transport: ") + error.what() +
                           " (inproc only works within one `lorafed simulate`)");
    }
  }

  bool crosses_processes() const override { return false; }
};

class InprocTransportFactory final : public lorafed::TransportFactory {
 public:
  std::unique_ptr<lorafed::Transport> create(const lorafed::ConfigTable&) const override {
    return std::make_unique<InprocTransport>();
  }
};

}  // namespace

LORAFED_TRANSPORT_PLUGIN("inproc", "0.1.0", InprocTransportFactory)
