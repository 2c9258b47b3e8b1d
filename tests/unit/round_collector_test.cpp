// The server's side of a round over an in-memory channel and a synthetic
// clock: the roster's admission checks, and the collector's deadlines, lost
// clients, late results and redelivery.
#include <ATen/ATen.h>

#include <catch2/catch.hpp>

#include "src/server/client_roster.hpp"
#include "src/server/round_collector.hpp"
#include "src/server/server_link.hpp"
#include "unit/runtime_fakes.hpp"

using namespace lorafed;
using namespace lorafed::test;
using namespace std::chrono_literals;

namespace {

ModelSpec small_spec() {
  return ModelSpec{"mlp-test", {{"fc1", 784, 64}, {"fc2", 64, 10}}, {}};
}

ClientRoster make_roster() {
  return ClientRoster(small_spec(), {{"client-0", 4}, {"client-1", 4}, {"client-2", 8}});
}

struct CollectorRig {
  ManualClock clock;
  FakeChannel channel{clock};
  ClientRoster roster = make_roster();
  ServerLink link{channel, roster, ServerLink::Options{{}, {}, 1000ms}, clock};
  RoundCollector collector{link, roster, 1000ms, 5.0};

  void register_clients(const std::vector<std::string>& ids) {
    for (const std::string& id : ids) {
      channel.push(from_client(id, wire::RegisterBody{id == "client-2" ? 8 : 4, "mlp-test", 50}));
    }
    while (!channel.inbox_empty()) link.receive_until(clock.now() + 10ms);
    channel.take_sent();
  }
  std::map<std::string, wire::Envelope> instructions(const std::vector<std::string>& ids,
                                                     std::uint32_t round) {
    std::map<std::string, wire::Envelope> result;
    for (const std::string& id : ids) result.emplace(id, to_client(id, wire::FitInsBody{}, round));
    return result;
  }
};

std::string refusal(ClientRoster& roster, const std::string& id, std::int64_t rank,
                    std::int64_t examples = 10, const std::string& model = "mlp-test") {
  const auto reason = roster.admit(id, wire::RegisterBody{rank, model, examples});
  return reason.value_or("");
}

}  // namespace

TEST_CASE("roster: every number in a registration is bounded before use", "[roster]") {
  ClientRoster roster = make_roster();
  CHECK(refusal(roster, "client-0", 4).empty());
  CHECK_THAT(refusal(roster, "client-1", 8), Catch::Contains("gives client-1 rank 4"));
  CHECK_THAT(refusal(roster, "client-1", std::int64_t{1} << 40), Catch::Contains("outside 1..64"));
  CHECK_THAT(refusal(roster, "client-1", 0), Catch::Contains("outside 1..64"));
  CHECK_THAT(refusal(roster, "client-1", 4, -1), Catch::Contains("num_examples"));
  CHECK_THAT(refusal(roster, "client-1", 4, std::int64_t{1} << 50),
             Catch::Contains("num_examples"));
  CHECK_THAT(refusal(roster, "client-77", 4), Catch::Contains("not one of this federation's 3"));
  CHECK_THAT(refusal(roster, "client-1", 4, 10, "gpt"), Catch::Contains("is not the server's"));
  CHECK(roster.alive_ids() == std::vector<std::string>{"client-0"});
  CHECK(roster.alive_count() == 1);
  // The count follows losses and returns, and a second registration of a
  // live client does not count it twice.
  CHECK(refusal(roster, "client-0", 4).empty());
  CHECK(roster.alive_count() == 1);
  CHECK(roster.mark_lost("client-0"));
  CHECK(roster.mark_lost("client-0"));
  CHECK(roster.alive_count() == 0);
  CHECK(refusal(roster, "client-0", 4).empty());
  CHECK(refusal(roster, "client-1", 4).empty());
  CHECK(roster.alive_count() == 2);
  CHECK(roster.alive_ids().size() == roster.alive_count());
}

TEST_CASE("roster: the listed live clients follow every admission and loss", "[roster]") {
  ClientRoster roster = make_roster();
  CHECK(roster.alive_ids().empty());  // listed once while empty: the list is kept
  CHECK(refusal(roster, "client-2", 8, 70).empty());
  CHECK(refusal(roster, "client-0", 4, 30).empty());
  CHECK(roster.alive_ids() == std::vector<std::string>{"client-0", "client-2"});
  REQUIRE(roster.alive_infos().size() == 2);
  CHECK(roster.alive_infos()[1].num_examples == 70);
  CHECK(roster.losses() == 0);
  CHECK(roster.mark_lost("client-0"));
  CHECK(roster.losses() == 1);
  CHECK(roster.mark_lost("client-0"));  // already lost: not a second loss
  CHECK(roster.losses() == 1);
  CHECK(roster.alive_ids() == std::vector<std::string>{"client-2"});
  // Registering again with other numbers shows in the next listing.
  CHECK(refusal(roster, "client-2", 8, 90).empty());
  REQUIRE(roster.alive_infos().size() == 1);
  CHECK(roster.alive_infos()[0].num_examples == 90);
}

TEST_CASE("roster: a refused registration is answered and the others go on", "[roster]") {
  CollectorRig rig;
  rig.channel.push(from_client("client-0", wire::RegisterBody{100, "mlp-test", 50}));
  rig.channel.push(from_client("client-1", wire::RegisterBody{4, "mlp-test", 50}));
  while (!rig.channel.inbox_empty()) rig.link.receive_until(rig.clock.now() + 10ms);
  const auto sent = rig.channel.take_sent();
  std::vector<wire::Envelope> refusals;
  for (const auto& message : sent) {
    if (std::holds_alternative<wire::ErrorBody>(message.envelope.body)) {
      refusals.push_back(message.envelope);
    }
  }
  REQUIRE(refusals.size() == 1);
  CHECK(refusals[0].recipient == "client-0");
  CHECK(std::get<wire::ErrorBody>(refusals[0].body).code == wire::ErrorCode::kRefused);
  CHECK(rig.roster.alive_ids() == std::vector<std::string>{"client-1"});
}

TEST_CASE("collector: replies, late results and the deadline", "[collector]") {
  CollectorRig rig;
  rig.register_clients({"client-0", "client-1", "client-2"});
  // Queued before the round: a stale result of round 1, one from a client
  // not asked, then the real answers of client-0 and client-1.
  rig.channel.push(from_client("client-0", wire::FitResBody{1, 50, {}}, 1));
  rig.channel.push(from_client("client-2", wire::FitResBody{1, 50, {}}, 2));
  rig.channel.push(from_client("client-0", wire::FitResBody{1, 50, {}}, 2));
  rig.channel.push(
      from_client("client-1", wire::ErrorBody{wire::ErrorCode::kClientFailure, "oom"}, 2));
  const auto started = rig.clock.now();
  const auto outcome = rig.collector.run(2, rig.instructions({"client-0", "client-1"}, 2),
                                         wire::BodyKind::kFitRes, 30s);
  REQUIRE(outcome.replies.size() == 1);
  CHECK(outcome.replies.contains("client-0"));
  REQUIRE(outcome.failures.size() == 1);
  CHECK(outcome.failures[0].client_id == "client-1");
  CHECK_THAT(outcome.failures[0].reason, Catch::Contains("oom"));
  CHECK(rig.clock.now() - started < 30s);  // it did not wait for the deadline

  // Nobody answers: the round closes at its deadline, not before.
  const auto waited_from = rig.clock.now();
  const auto silent =
      rig.collector.run(3, rig.instructions({"client-2"}, 3), wire::BodyKind::kFitRes, 30s);
  CHECK(silent.replies.empty());
  REQUIRE(silent.failures.size() == 1);
  CHECK_THAT(silent.failures[0].reason, Catch::Contains("round_timeout_s"));
  CHECK(rig.clock.now() - waited_from >= 30s);
  CHECK(rig.clock.now() - waited_from < 31s);
}

TEST_CASE("collector: a client the broker reports lost fails at once", "[collector]") {
  CollectorRig rig;
  rig.register_clients({"client-0", "client-1"});
  rig.channel.push(
      from_client("client-1", wire::ErrorBody{wire::ErrorCode::kDisconnected, "silent"}));
  rig.channel.push(from_client("client-0", wire::FitResBody{1, 50, {}}, 4));
  const auto started = rig.clock.now();
  const auto outcome = rig.collector.run(4, rig.instructions({"client-0", "client-1"}, 4),
                                         wire::BodyKind::kFitRes, 60s);
  CHECK(outcome.replies.contains("client-0"));
  REQUIRE(outcome.failures.size() == 1);
  CHECK_THAT(outcome.failures[0].reason, Catch::Contains("lost"));
  CHECK(rig.clock.now() - started < 1s);
  CHECK_FALSE(rig.roster.alive("client-1"));
}

TEST_CASE("collector: a client that registers again gets its instruction again", "[collector]") {
  CollectorRig rig;
  rig.register_clients({"client-0"});
  // It restarted twice in quick succession, then answers.
  rig.channel.push(from_client("client-0", wire::RegisterBody{4, "mlp-test", 50}));
  rig.channel.push(from_client("client-0", wire::RegisterBody{4, "mlp-test", 50}));
  rig.channel.push(from_client("client-0", wire::FitResBody{1, 50, {}}, 5));
  const auto outcome =
      rig.collector.run(5, rig.instructions({"client-0"}, 5), wire::BodyKind::kFitRes, 60s);
  CHECK(outcome.replies.contains("client-0"));
  int fit_instructions = 0;
  for (const auto& message : rig.channel.take_sent()) {
    fit_instructions += std::holds_alternative<wire::FitInsBody>(message.envelope.body) ? 1 : 0;
  }
  // The first send and one resend: the second registration came within the interval.
  CHECK(fit_instructions == 2);
}

TEST_CASE("collector: registrations before the round are not redelivered", "[collector]") {
  CollectorRig rig;
  rig.register_clients({"client-0", "client-1"});
  rig.channel.push(from_client("client-0", wire::FitResBody{1, 50, {}}, 1));
  rig.channel.push(from_client("client-1", wire::FitResBody{1, 50, {}}, 1));
  rig.collector.run(1, rig.instructions({"client-0", "client-1"}, 1), wire::BodyKind::kFitRes, 60s);
  int fit_instructions = 0;
  for (const auto& message : rig.channel.take_sent()) {
    fit_instructions += std::holds_alternative<wire::FitInsBody>(message.envelope.body) ? 1 : 0;
  }
  CHECK(fit_instructions == 2);
}

TEST_CASE("collector: each reply is handed over as it arrives, not when the round closes",
          "[collector]") {
  CollectorRig rig;
  rig.register_clients({"client-0", "client-1", "client-2"});
  // A stale result, one from a client not asked and an error are not
  // replies to hand over; client-0's answer is, and client-1 never answers.
  rig.channel.push(from_client("client-0", wire::FitResBody{1, 50, {}}, 5));
  rig.channel.push(from_client("client-2", wire::FitResBody{1, 50, {}}, 6));
  rig.channel.push(from_client("client-0", wire::FitResBody{1, 50, {}}, 6));
  const auto started = rig.clock.now();
  std::vector<std::pair<std::string, RuntimeClock::duration>> handed;
  const auto outcome =
      rig.collector.run(6, rig.instructions({"client-0", "client-1"}, 6), wire::BodyKind::kFitRes,
                        30s, [&](const std::string& id, RoundCollector::Reply& reply) {
                          CHECK(reply.envelope.sender == id);
                          handed.emplace_back(id, rig.clock.now() - started);
                        });
  REQUIRE(handed.size() == 1);
  CHECK(handed[0].first == "client-0");
  CHECK(handed[0].second < 1s);             // as it arrived...
  CHECK(rig.clock.now() - started >= 30s);  // ...not when the round closed
  CHECK(outcome.replies.contains("client-0"));
  REQUIRE(outcome.failures.size() == 1);
  CHECK(outcome.failures[0].client_id == "client-1");
}
