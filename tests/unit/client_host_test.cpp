// The client host over a scripted in-memory channel and a synthetic clock:
// registration, heartbeats, an instruction that comes twice, a broker that
// falls silent, refusal, shutdown and the stop flag.
#include <ATen/ATen.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <functional>
#include <map>

#include "lorafed/adapter.hpp"
#include "src/client/client_host.hpp"
#include "unit/runtime_fakes.hpp"

using namespace lorafed;
using namespace lorafed::test;
using namespace std::chrono_literals;

namespace {

ModelSpec tiny_spec() {
  return ModelSpec{"tiny", {{"fc", 6, 4}}, {}};
}

// A model whose training is instant; only the spec and counts matter here.
class StillModel final : public ModelBackend {
 public:
  ModelSpec spec() const override { return tiny_spec(); }
  std::int64_t num_train_examples() const override { return 30; }
  void install_adapter(const Adapter& adapter) override { adapter_ = adapter; }
  Adapter adapter() const override { return adapter_; }
  void install_merged_delta(const NamedTensors&) override {}
  void merge_adapter(const Adapter&) override {}
  TrainReport train(ParameterGroup, const TrainOptions&, std::uint64_t) override { return {}; }
  EvalReport evaluate() override { return {30, 0.5, {}}; }

 private:
  Adapter adapter_;
};

// Returns the adapter it was given; counts how often it trained.
class CountingProcedure final : public ClientProcedure {
 public:
  FitOutcome fit(ModelBackend&, const FitInstruction& instruction, const ClientContext&) override {
    ++fits;
    return FitOutcome{instruction.adapter, 30, {}};
  }
  EvaluateOutcome evaluate(ModelBackend&, const EvaluateInstruction&,
                           const ClientContext&) override {
    return {30, 0.5, {}};
  }
  std::atomic<int> fits{0};
};

// A channel whose incoming messages come from a script that sees the clock
// and everything the host sent so far.
class ScriptedChannel final : public Channel {
 public:
  using Script = std::function<std::optional<wire::Envelope>(const std::vector<wire::Envelope>&)>;
  ScriptedChannel(ManualClock& clock, Script script) : clock_(clock), script_(std::move(script)) {}

  void send(Message message) override { sent.push_back(wire::decode(message)); }
  std::optional<Message> receive(std::chrono::milliseconds timeout) override {
    if (auto envelope = script_(sent)) return wire::encode(*envelope);
    clock_.advance(timeout);
    return std::nullopt;
  }
  void close() override {}

  std::vector<wire::Envelope> sent;

 private:
  ManualClock& clock_;
  Script script_;
};

int count(const std::vector<wire::Envelope>& sent, wire::BodyKind kind) {
  int n = 0;
  for (const wire::Envelope& envelope : sent) n += wire::kind_of(envelope.body) == kind ? 1 : 0;
  return n;
}

wire::Envelope fit_instruction(std::uint32_t round) {
  const Adapter adapter = init_adapter(tiny_spec(), 2, 4.0, 7);
  return wire::Envelope{round, wire::kServerId, "client-0", wire::FitInsBody{4.0, {}, 0},
                        to_named_tensors(adapter)};
}

ClientHost::Options options() {
  ClientHost::Options options;
  options.heartbeat_interval = 1000ms;
  options.heartbeat_timeout = 5000ms;
  options.reconnect_backoff = 500ms;
  options.reconnect_backoff_max = 2000ms;
  options.server_silence_timeout = 60s;
  return options;
}

struct HostRig {
  ManualClock clock;
  std::shared_ptr<CountingProcedure> procedure = std::make_shared<CountingProcedure>();
  std::vector<std::shared_ptr<VirtualClient>> clients() {
    VirtualClient::Options client{"client-0", 0, 2, 1, {}};
    return {std::make_shared<VirtualClient>(client, std::make_shared<StillModel>(), procedure)};
  }
};

}  // namespace

TEST_CASE("client host: an instruction that comes again is answered again, not retrained",
          "[client_host]") {
  HostRig rig;
  int phase = 0;
  ScriptedChannel channel(
      rig.clock, [&](const std::vector<wire::Envelope>& sent) -> std::optional<wire::Envelope> {
        const int replies = count(sent, wire::BodyKind::kFitRes);
        if (phase == 0 && count(sent, wire::BodyKind::kRegister) == 1) {
          phase = 1;
          return fit_instruction(1);
        }
        if (phase == 1 && replies == 1) {
          phase = 2;  // the server sends it again (it saw the client register again)
          return fit_instruction(1);
        }
        if (phase == 2 && replies == 2) {
          phase = 3;
          return to_client("client-0", wire::ShutdownBody{"done"});
        }
        return std::nullopt;
      });
  // Training runs on a worker in real time while the synthetic clock runs
  // on with every empty poll: no timeout may fire meanwhile.
  ClientHost::Options patient = options();
  patient.heartbeat_timeout = std::chrono::hours(1);
  patient.server_silence_timeout = std::chrono::hours(2);
  ClientHost host(rig.clients(), channel, patient, rig.clock);
  CHECK(host.run());
  CHECK(rig.procedure->fits == 1);
  REQUIRE(count(channel.sent, wire::BodyKind::kFitRes) == 2);
  CHECK(channel.sent.front().sender == "client-0");
  CHECK(wire::kind_of(channel.sent.front().body) == wire::BodyKind::kRegister);
}

TEST_CASE("client host: heartbeats while idle, registers again when the broker falls silent",
          "[client_host]") {
  HostRig rig;
  const auto started = rig.clock.now();
  int answered = 0;
  ScriptedChannel channel(
      rig.clock, [&](const std::vector<wire::Envelope>& sent) -> std::optional<wire::Envelope> {
        const auto elapsed = rig.clock.now() - started;
        // The broker answers each heartbeat for 3 s, then says nothing for 10 s,
        // then shuts it down.
        if (elapsed < 3s && count(sent, wire::BodyKind::kHeartbeat) > answered) {
          ++answered;
          return to_client("client-0", wire::HeartbeatBody{});
        }
        if (elapsed > 13s) return to_client("client-0", wire::ShutdownBody{"done"});
        return std::nullopt;
      });
  ClientHost host(rig.clients(), channel, options(), rig.clock);
  CHECK(host.run());
  CHECK(count(channel.sent, wire::BodyKind::kHeartbeat) >= 3);
  // One registration at the start, then again after 5 s of silence, with backoff.
  const int registrations = count(channel.sent, wire::BodyKind::kRegister);
  CHECK(registrations >= 3);
  CHECK(registrations <= 10);
}

TEST_CASE("client host: a refusal or the stop flag ends the run", "[client_host]") {
  HostRig rig;
  SECTION("refused") {
    ScriptedChannel channel(
        rig.clock, [&](const std::vector<wire::Envelope>& sent) -> std::optional<wire::Envelope> {
          if (count(sent, wire::BodyKind::kRegister) == 1 && sent.size() == 1) {
            return to_client("client-0", wire::ErrorBody{wire::ErrorCode::kRefused, "wrong rank"});
          }
          return std::nullopt;
        });
    ClientHost host(rig.clients(), channel, options(), rig.clock);
    CHECK_FALSE(host.run());
    CHECK(host.all_refused());
  }
  SECTION("stopped") {
    std::atomic<bool> stop{false};
    ScriptedChannel channel(
        rig.clock, [&](const std::vector<wire::Envelope>&) -> std::optional<wire::Envelope> {
          if (rig.clock.now() - ManualClock().now() > 2s) stop = true;  // SIGINT after 2 s
          return std::nullopt;
        });
    const bool announce = GENERATE(false, true);
    ClientHost::Options told = options();
    told.announce_leaving = announce;
    ClientHost host(rig.clients(), channel, told, rig.clock, &stop);
    CHECK_FALSE(host.run());
    CHECK_FALSE(host.all_refused());
    CHECK(rig.clock.now() - ManualClock().now() < 3s);
    // A client process says it leaves, so the server fails it at once; a
    // simulation's host (announce_leaving off) stops with its server.
    CHECK(count(channel.sent, wire::BodyKind::kError) == (announce ? 1 : 0));
    if (announce) {
      const wire::Envelope& last = channel.sent.back();
      CHECK(last.sender == "client-0");
      CHECK(std::get<wire::ErrorBody>(last.body).code == wire::ErrorCode::kLeaving);
    }
  }
  SECTION("shut down by the server: nobody to tell") {
    ScriptedChannel channel(
        rig.clock, [&](const std::vector<wire::Envelope>& sent) -> std::optional<wire::Envelope> {
          if (sent.size() == 1) return to_client("client-0", wire::ShutdownBody{"over"});
          return std::nullopt;
        });
    ClientHost::Options told = options();
    told.announce_leaving = true;
    std::atomic<bool> stop{false};
    ClientHost host(rig.clients(), channel, told, rig.clock, &stop);
    CHECK(host.run());
    CHECK(count(channel.sent, wire::BodyKind::kError) == 0);
  }
}

TEST_CASE("client host: one heartbeat for all its clients, all register again when one is lost",
          "[client_host]") {
  HostRig rig;
  std::vector<std::shared_ptr<VirtualClient>> clients;
  for (int k = 0; k < 3; ++k) {
    VirtualClient::Options client{"client-" + std::to_string(k), k, 2, 1, {}};
    clients.push_back(
        std::make_shared<VirtualClient>(client, std::make_shared<StillModel>(), rig.procedure));
  }
  const auto started = rig.clock.now();
  bool told = false;
  int answered = 0;
  ScriptedChannel channel(
      rig.clock, [&](const std::vector<wire::Envelope>& sent) -> std::optional<wire::Envelope> {
        const auto elapsed = rig.clock.now() - started;
        // At 3.5 s the broker says it lost client-0 (the one that heartbeats).
        if (elapsed > 3500ms && !told) {
          told = true;
          return to_client("client-0", wire::ErrorBody{wire::ErrorCode::kNotRegistered, "lost"});
        }
        if (elapsed > 6s) return to_client("client-0", wire::ShutdownBody{"done"});
        // The broker answers every heartbeat, so the host never falls back to
        // reconnecting.
        if (count(sent, wire::BodyKind::kHeartbeat) > answered) {
          ++answered;
          return to_client("client-0", wire::HeartbeatBody{});
        }
        return std::nullopt;
      });
  ClientHost host(std::move(clients), channel, options(), rig.clock);
  CHECK(host.run());
  std::map<std::string, int> heartbeats, registrations;
  for (const wire::Envelope& envelope : channel.sent) {
    if (wire::kind_of(envelope.body) == wire::BodyKind::kHeartbeat) ++heartbeats[envelope.sender];
    if (wire::kind_of(envelope.body) == wire::BodyKind::kRegister) {
      ++registrations[envelope.sender];
    }
  }
  // About one heartbeat a second for the connection, all from one client.
  CHECK(heartbeats.size() == 1);
  CHECK(heartbeats["client-0"] >= 5);
  CHECK(heartbeats["client-0"] <= 7);
  // Each registered at the start and again after the broker lost client-0.
  CHECK(registrations ==
        std::map<std::string, int>{{"client-0", 2}, {"client-1", 2}, {"client-2", 2}});
}
