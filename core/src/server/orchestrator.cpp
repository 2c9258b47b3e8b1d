#include "src/server/orchestrator.hpp"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <utility>

#include "lorafed/error.hpp"
#include "src/peft_adapter.hpp"
#include "src/sampling.hpp"
#include "src/server/update_checks.hpp"
#include "src/statistics.hpp"
#include "src/wire/codec.hpp"

namespace lorafed {
namespace {

constexpr std::size_t kFitRes = 2;       // index of FitResBody in wire::Body
constexpr std::size_t kEvaluateRes = 4;  // index of EvaluateResBody

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// "loss 0.4321  accuracy 81.23%": the loss, then each metric (accuracies in percent).
std::string describe_quality(const nlohmann::json& evaluation) {
  std::string text = fmt::format("loss {:.4f}", evaluation["loss"].get<double>());
  for (const auto& [name, value] : evaluation.items()) {
    // Spreads over clients are shown beside their means; counts not at all.
    if (name == "loss" || !value.is_number() || name.ends_with("_std") ||
        name == "clients_evaluated") {
      continue;
    }
    if (name == "accuracy") {
      text += fmt::format("  acc {:.2f}%", 100 * value.get<double>());
      if (evaluation.contains("accuracy_std")) {
        text += fmt::format(" ± {:.2f}", 100 * evaluation["accuracy_std"].get<double>());
      }
    } else if (value.is_number_float()) {
      text += fmt::format("  {} {:.4g}", name, value.get<double>());
    }
  }
  return text;
}

// best_<metric> and best_<metric>_round over the evaluated rounds (round 0
// included), for the loss and each metric; spreads and counts left out.
class BestMetrics {
 public:
  void add(int round, const nlohmann::json& evaluation) {
    for (const auto& [name, value] : evaluation.items()) {
      if (!value.is_number() || name.ends_with("_std") || name == "clients_evaluated") continue;
      const double number = value.get<double>();
      auto [entry, inserted] = best_.try_emplace(name, Entry{number, round});
      const bool better =
          lower_is_better(name) ? number < entry->second.value : number > entry->second.value;
      if (!inserted && better) entry->second = Entry{number, round};
    }
  }
  nlohmann::json save() const {
    nlohmann::json saved = nlohmann::json::object();
    for (const auto& [name, entry] : best_) saved[name] = {entry.value, entry.round};
    return saved;
  }
  void restore(const nlohmann::json& saved) {
    for (const auto& [name, entry] : saved.items()) {
      best_[name] = Entry{entry.at(0).get<double>(), entry.at(1).get<int>()};
    }
  }
  nlohmann::json summary() const {
    nlohmann::json result = nlohmann::json::object();
    for (const auto& [name, entry] : best_) {
      result["best_" + name] = entry.value;
      result["best_" + name + "_round"] = entry.round;
    }
    return result;
  }

 private:
  struct Entry {
    double value;
    int round;
  };
  std::map<std::string, Entry> best_;
};

std::string format_duration(double seconds) {
  if (seconds < 120) return fmt::format("{:.1f}s", seconds);
  return fmt::format("{}m{:02d}s", static_cast<int>(seconds) / 60, static_cast<int>(seconds) % 60);
}

}  // namespace

Orchestrator::Orchestrator(const FederationConfig& config, std::shared_ptr<Strategy> strategy,
                           std::shared_ptr<ModelBackend> evaluator, Channel& channel,
                           MetricsWriter& metrics)
    : config_(config),
      strategy_(std::move(strategy)),
      evaluator_(std::move(evaluator)),
      channel_(channel),
      metrics_(metrics),
      spec_(evaluator_->spec()) {}

nlohmann::json Orchestrator::run() {
  try {
    return run_rounds();
  } catch (const std::exception& error) {
    shutdown_clients(std::string("server stopped: ") + error.what());
    throw;
  }
}

void Orchestrator::shutdown_clients(const std::string& reason) {
  for (const auto& [id, client] : clients_) {
    try {
      send(id, wire::Envelope{0, wire::kServerId, id, wire::ShutdownBody{reason}, {}});
    } catch (const std::exception& error) {
      spdlog::warn("could not tell {} to shut down: {}", id, error.what());
    }
  }
}

nlohmann::json Orchestrator::identity(const FederationConfig& config, const ModelSpec& spec) {
  return {{"strategy", config.strategy_name},  {"model", config.model_name},
          {"model_id", spec.model_id},         {"seed", config.seed},
          {"num_clients", config.num_clients}, {"alpha", config.alpha}};
}

nlohmann::json Orchestrator::run_rounds() {
  strategy_->initialize(StrategyContext{spec_, config_.alpha, config_.seed});

  // Round 0 is the base model: the strategy's initial global product, or for
  // a personalised strategy the clients' own models before any training.
  const bool personalised = strategy_->personalised();
  nlohmann::json base;
  nlohmann::json last;
  nlohmann::json last_federated;
  BestMetrics best;
  std::vector<double> round_seconds;
  int first_round = 1;
  auto started = Clock::now();
  if (resume_) {
    strategy_->load_state(resume_->state);
    try {
      const nlohmann::json& saved = resume_->progress;
      base = saved.at("base");
      last = saved.at("last");
      last_federated = saved.at("last_federated");
      best.restore(saved.at("best"));
      round_seconds = saved.at("round_s").get<std::vector<double>>();
      bytes_down_ = saved.at("bytes_down").get<std::uint64_t>();
      bytes_up_ = saved.at("bytes_up").get<std::uint64_t>();
      failures_total_ = saved.at("client_failures").get<std::int64_t>();
      accounting_.restore(saved.at("accounting"));
      started -= std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(saved.at("elapsed_s").get<double>()));
    } catch (const nlohmann::json::exception& error) {
      throw FormatError("the checkpoint's progress record is damaged: " +
                        std::string(error.what()));
    }
    first_round = resume_->round + 1;
    spdlog::info("resuming after round {} of {}", resume_->round, config_.rounds);
    resume_.reset();  // the state is in the strategy now
    if (status_ != nullptr) status_->set_state("waiting for clients");
    await_registrations();
    if (status_ != nullptr) status_->set_state("running");
  } else {
    if (!personalised) base = evaluate_global();
    if (status_ != nullptr) status_->set_state("waiting for clients");
    await_registrations();
    if (status_ != nullptr) status_->set_state("running");
    if (personalised) base = evaluate_round(0);
    nlohmann::json base_record = base;
    base_record.update({{"type", "round"}, {"round", 0}, {"elapsed_s", seconds_since(started)}});
    metrics_.record(base_record);
    spdlog::info("{}: {}", personalised ? "clients' models before training" : "base model",
                 base.contains("loss") ? describe_quality(base) : "(no client evaluated)");
    last = base;
    best.add(0, base);
  }

  for (int round = first_round; round <= config_.rounds; ++round) {
    const auto round_started = Clock::now();
    nlohmann::json record = fit_round(round);
    const bool evaluated = config_.evaluate_every > 0 &&
                           (round % config_.evaluate_every == 0 || round == config_.rounds);
    if (evaluated) {
      const auto eval_started = Clock::now();
      // Personalised: the mean over clients of their own models.
      last = personalised ? evaluate_round(round) : evaluate_global();
      best.add(round, last);
      record.update(last);
      record["evaluate_s"] = seconds_since(eval_started);
    }
    if (!personalised) {
      if (nlohmann::json federated = evaluate_round(round); !federated.empty()) {
        record["federated_evaluation"] = federated;
        last_federated = std::move(federated);
      }
    }
    const double round_s = seconds_since(round_started);
    round_seconds.push_back(round_s);
    record["round_s"] = round_s;
    record["elapsed_s"] = seconds_since(started);
    metrics_.record(record);
    if (config_.checkpoint) {
      Checkpoint checkpoint{round,
                            strategy_->state(),
                            identity(config_, spec_),
                            {{"base", base},
                             {"last", last},
                             {"last_federated", last_federated},
                             {"best", best.save()},
                             {"round_s", round_seconds},
                             {"bytes_down", bytes_down_},
                             {"bytes_up", bytes_up_},
                             {"client_failures", failures_total_},
                             {"accounting", accounting_.save()},
                             {"elapsed_s", seconds_since(started)}}};
      checkpoint.write(metrics_.output_dir() / "checkpoint");
    }
    if (status_ != nullptr) {
      status_->record_round(record, bytes_down_, bytes_up_, failures_total_);
      publish_clients();
    }

    const double mean_round = seconds_since(started) / round;
    spdlog::info("round {}/{}  clients {} ok, {} failed  {}  elapsed {}  ETA {}", round,
                 config_.rounds, record["clients_ok"].get<int>(),
                 record["clients_failed"].get<int>(),
                 evaluated && last.contains("loss") ? describe_quality(last) : "(not evaluated)",
                 format_duration(seconds_since(started)),
                 format_duration(mean_round * (config_.rounds - round)));
  }

  shutdown_clients("federation finished");

  nlohmann::json summary = {
      {"strategy", config_.strategy_name},
      {"model", config_.model_name},
      {"transport", config_.transport_name},
      {"rounds", config_.rounds},
      {"clients_registered", clients_.size()},
      {"seed", config_.seed},
      {"client_failures", failures_total_},
      {"personalised", personalised},
      {"bytes_down", bytes_down_},
      {"bytes_up", bytes_up_},
      {"elapsed_s", seconds_since(started)},
      {"round_s", round_seconds},
  };
  // base_<metric> and final_<metric> for the loss and every metric the model reports.
  for (const auto& [name, value] : base.items()) summary["base_" + name] = value;
  for (const auto& [name, value] : last.items()) summary["final_" + name] = value;
  for (const auto& [name, value] : last_federated.items()) {
    summary["final_federated_" + name] = value;
  }
  summary.update(best.summary());
  summary.update(accounting_.summary());
  if (!personalised) summary["peft"] = export_adapters();
  metrics_.write_summary(summary);
  if (status_ != nullptr) status_->set_state("finished");
  return summary;
}

std::vector<std::string> Orchestrator::alive_ids() const {
  std::vector<std::string> ids;
  for (const auto& [id, client] : clients_) {
    if (client.alive) ids.push_back(id);
  }
  return ids;
}

std::int64_t Orchestrator::await_clients(std::int64_t wanted) {
  const auto deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(config_.registration_timeout_s));
  auto alive = [this] { return static_cast<std::int64_t>(alive_ids().size()); };
  while (alive() < wanted && Clock::now() < deadline) {
    if (auto received = receive_until(deadline)) {
      // Results of a round that is over (a server restarted in mid-round).
      spdlog::info("discarding {} from {} for round {} (no round is open)",
                   wire::body_name(received->envelope.body), received->envelope.sender,
                   received->envelope.round);
    }
  }
  return alive();
}

void Orchestrator::await_registrations() {
  spdlog::info("waiting for {} clients to register on {}", config_.min_available_clients,
               config_.endpoint);
  const std::int64_t registered = await_clients(config_.min_available_clients);
  if (registered < config_.min_available_clients) {
    if (registered < config_.min_fit_clients) {
      throw Error("only " + std::to_string(registered) + " of " +
                  std::to_string(config_.min_available_clients) + " clients registered within " +
                  fmt::format("{:g}", config_.registration_timeout_s) +
                  "s (federation.registration_timeout_s); are the clients running and pointed at " +
                  config_.endpoint + "?");
    }
    spdlog::warn("going ahead with {} of {} clients after the registration timeout", registered,
                 config_.min_available_clients);
  }
}

void Orchestrator::handle_register(const wire::Envelope& envelope) {
  const auto& body = std::get<wire::RegisterBody>(envelope.body);
  const std::string& id = envelope.sender;
  std::string problem;
  if (id.empty() || id == wire::kServerId)
    problem = "a client id must be non-empty and not 'server'";
  else if (body.model_id != spec_.model_id) {
    problem =
        "client model '" + body.model_id + "' is not the server's model '" + spec_.model_id + "'";
  } else if (body.max_rank < 1)
    problem = "max_rank must be at least 1";
  else if (body.num_examples < 0)
    problem = "num_examples must not be negative";
  if (!problem.empty()) {
    spdlog::warn("refusing registration of '{}': {}", id, problem);
    send_error(id, wire::ErrorCode::kRefused, problem);
    return;
  }
  const bool known = clients_.contains(id);
  if (known && !clients_.at(id).alive) spdlog::info("{} is back", id);
  clients_[id] = Client{ClientInfo{id, body.max_rank, body.num_examples, body.model_id}, true};
  failed_last_.erase(id);
  registered_.insert(id);
  publish_clients();
  spdlog::debug("{} {} (rank {}, {} examples)", known ? "re-registered" : "registered", id,
                body.max_rank, body.num_examples);
}

std::optional<Orchestrator::Received> Orchestrator::receive_until(Clock::time_point deadline) {
  auto now = Clock::now();
  if (now >= next_heartbeat_) {
    // The broker learns that the server is (still) there.
    send(wire::kServerId,
         wire::Envelope{0, wire::kServerId, wire::kServerId, wire::HeartbeatBody{}, {}});
    next_heartbeat_ = now + config_.heartbeat_interval();
  }
  if (now >= deadline) return std::nullopt;
  const auto wait = std::min<Clock::duration>(deadline - now, std::chrono::milliseconds(200));
  std::optional<Message> message = channel_.receive(
      std::chrono::duration_cast<std::chrono::milliseconds>(wait) + std::chrono::milliseconds(1));
  if (!message) return std::nullopt;
  std::string sender;
  try {
    sender = wire::decode_header(*message, config_.limits).sender;
    wire::Envelope envelope = wire::decode(*message, config_.limits);
    if (std::holds_alternative<wire::RegisterBody>(envelope.body)) {
      handle_register(envelope);
      return std::nullopt;
    }
    if (const auto* error = std::get_if<wire::ErrorBody>(&envelope.body);
        error != nullptr && error->code == wire::ErrorCode::kDisconnected) {
      if (const auto client = clients_.find(sender); client != clients_.end()) {
        spdlog::warn("{} is lost ({})", sender, error->text);
        client->second.alive = false;
        publish_clients();
      }
      return std::nullopt;
    }
    return Received{std::move(envelope), wire::message_bytes(*message)};
  } catch (const wire::DecodeError& error) {
    spdlog::warn("dropping an undecodable message from '{}' ({} bytes): {}", sender,
                 wire::message_bytes(*message), error.what());
    if (!sender.empty()) send_error(sender, error.code(), error.what());
  }
  return std::nullopt;
}

std::uint64_t Orchestrator::send(const std::string& client_id, wire::Envelope envelope) {
  Message message = wire::encode(envelope, config_.encode);
  const std::uint64_t bytes = wire::message_bytes(message);
  try {
    channel_.send(std::move(message));
  } catch (const std::exception& error) {
    // The broker is unreachable; the client's result will not come and the
    // round closes without it.
    spdlog::warn("could not send {} to {}: {}", wire::body_name(envelope.body), client_id,
                 error.what());
    return 0;
  }
  return bytes;
}

void Orchestrator::send_error(const std::string& client_id, wire::ErrorCode code,
                              const std::string& text) {
  send(client_id, wire::Envelope{0, wire::kServerId, client_id, wire::ErrorBody{code, text}, {}});
}

Orchestrator::Collected Orchestrator::collect(int round,
                                              const std::map<std::string, wire::Envelope>& sent,
                                              std::size_t wanted_body, Clock::time_point sent_at) {
  Collected collected;
  std::set<std::string> pending;
  for (const auto& [id, instruction] : sent) pending.insert(id);
  registered_.clear();
  std::map<std::string, Clock::time_point> resent_at;
  const auto deadline = sent_at + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(config_.round_timeout_s));
  while (!pending.empty() && Clock::now() < deadline) {
    auto received = receive_until(deadline);
    for (auto id = pending.begin(); id != pending.end();) {
      if (clients_.at(*id).alive) {
        ++id;
        continue;
      }
      collected.failures.push_back(
          Failure{*id, fmt::format("lost: no heartbeat within {:g}s (broker.heartbeat_timeout_s)",
                                   config_.heartbeat_timeout_s)});
      id = pending.erase(id);
    }
    for (const std::string& id : std::exchange(registered_, {})) {
      if (!pending.contains(id)) continue;
      // Its reply may be lost with a broker that restarted; a client that
      // already answered sends the same reply again (ClientHost). Attempts a
      // client queued while the broker was away arrive together: one resend
      // per heartbeat interval answers them all.
      const auto now = Clock::now();
      if (const auto last = resent_at.find(id);
          last != resent_at.end() && now - last->second < config_.heartbeat_interval()) {
        continue;
      }
      resent_at[id] = now;
      spdlog::info("round {}: {} registered again; sending its {} again", round, id,
                   wire::body_name(sent.at(id).body));
      send(id, sent.at(id));
    }
    if (!received) continue;
    auto& [envelope, bytes] = *received;
    const std::string sender = envelope.sender;  // a copy: the envelope may be moved below
    if (!clients_.contains(sender)) {
      send_error(sender, wire::ErrorCode::kNotRegistered, "register before sending results");
      continue;
    }
    const bool for_this_round =
        envelope.round == static_cast<std::uint32_t>(round) && pending.contains(sender);
    if (!for_this_round) {
      spdlog::info("discarding {} from {} for round {} (now in round {})",
                   wire::body_name(envelope.body), sender, envelope.round, round);
      continue;
    }
    if (const auto* error = std::get_if<wire::ErrorBody>(&envelope.body)) {
      collected.failures.push_back(Failure{sender, "client error: " + error->text});
      pending.erase(sender);
    } else if (envelope.body.index() == wanted_body) {
      Reply reply;
      reply.seconds = seconds_since(sent_at);
      reply.bytes = bytes;
      reply.envelope = std::move(envelope);
      pending.erase(sender);
      collected.replies.emplace(sender, std::move(reply));
    } else if (!std::holds_alternative<wire::HeartbeatBody>(envelope.body)) {
      send_error(sender, wire::ErrorCode::kUnexpected,
                 std::string("unexpected ") + wire::body_name(envelope.body));
    }
  }
  for (const std::string& id : pending) {
    collected.failures.push_back(Failure{
        id, "no result within round_timeout_s = " + fmt::format("{:g}s", config_.round_timeout_s)});
  }
  return collected;
}

void Orchestrator::publish_clients() {
  if (status_ == nullptr) return;
  std::int64_t alive = 0;
  for (const std::string& id : alive_ids()) alive += failed_last_.contains(id) ? 0 : 1;
  status_->set_clients(static_cast<std::int64_t>(clients_.size()), alive);
}

std::vector<ClientInfo> Orchestrator::infos(const std::vector<std::string>& client_ids) const {
  std::vector<ClientInfo> result;
  for (const std::string& id : client_ids) result.push_back(clients_.at(id).info);
  return result;
}

nlohmann::json Orchestrator::fit_round(int round) {
  if (static_cast<std::int64_t>(alive_ids().size()) < config_.min_fit_clients) {
    spdlog::warn("round {}: fewer than min_fit_clients = {} clients alive; waiting up to {:g}s",
                 round, config_.min_fit_clients, config_.registration_timeout_s);
    if (await_clients(config_.min_fit_clients) == 0) {
      throw Error("no client is alive after waiting registration_timeout_s = " +
                  fmt::format("{:g}s", config_.registration_timeout_s));
    }
  }
  const std::vector<std::string> ids = alive_ids();
  const std::vector<std::string> sampled =
      sample_clients(ids, config_.fraction_fit, config_.min_fit_clients, config_.seed, round);
  const std::vector<ClientInfo> sampled_infos = infos(sampled);

  std::vector<FitInstruction> instructions = strategy_->configure_fit(round, sampled_infos);
  const auto sent_at = Clock::now();
  std::map<std::string, std::uint64_t> bytes_down;
  std::map<std::string, wire::Envelope> instructed;
  for (FitInstruction& instruction : instructions) {
    if (!clients_.contains(instruction.client_id)) {
      throw Error("strategy '" + config_.strategy_name + "' instructed unknown client '" +
                  instruction.client_id + "'");
    }
    client_rank_sent_[instruction.client_id] = instruction.adapter.rank();
    NamedTensors tensors = to_named_tensors(instruction.adapter);
    for (auto& [name, tensor] : to_named_tensors(instruction.merge)) {
      tensors.emplace(wire::kMergePrefix + name, tensor);
    }
    for (auto& [name, tensor] : instruction.parameters) {
      tensors.emplace(wire::kParameterPrefix + name, tensor);
    }
    wire::Envelope envelope{
        static_cast<std::uint32_t>(round), wire::kServerId, instruction.client_id,
        wire::FitInsBody{instruction.adapter.alpha, std::move(instruction.config),
                         instruction.merge.alpha},
        std::move(tensors)};
    bytes_down[instruction.client_id] = send(instruction.client_id, envelope);
    instructed.emplace(instruction.client_id, std::move(envelope));
  }

  Collected collected = collect(round, instructed, kFitRes, sent_at);
  std::vector<FitResult> results;
  std::vector<Failure> failures = std::move(collected.failures);
  std::map<std::string, const Reply*> accepted;
  for (auto& [id, reply] : collected.replies) {
    auto& body = std::get<wire::FitResBody>(reply.envelope.body);
    try {
      const std::int64_t sent_rank = client_rank_sent_.at(id);
      CheckedUpdate update =
          check_update(std::move(reply.envelope.tensors), body.alpha, spec_, sent_rank);
      if (update.adapter.rank() != sent_rank) {
        throw FormatError("returned rank " + std::to_string(update.adapter.rank()) +
                          ", was sent rank " + std::to_string(sent_rank));
      }
      if (body.num_examples < 0) throw FormatError("negative num_examples");
      results.push_back(FitResult{id, std::move(update.adapter), body.num_examples, body.metrics,
                                  std::move(update.parameters)});
      accepted[id] = &reply;
    } catch (const FormatError& error) {
      failures.push_back(Failure{id, std::string("invalid update: ") + error.what()});
      send_error(id, wire::ErrorCode::kInvalidTensor, error.what());
    }
  }

  for (const FitResult& result : results) {
    const Reply& reply = *accepted.at(result.client_id);
    nlohmann::json line = {{"type", "client"},
                           {"phase", "fit"},
                           {"round", round},
                           {"client", result.client_id},
                           {"status", "ok"},
                           {"rank", result.adapter.rank()},
                           {"num_examples", result.num_examples},
                           {"seconds", reply.seconds},
                           {"bytes_down", bytes_down[result.client_id]},
                           {"bytes_up", reply.bytes}};
    for (const auto& [name, value] : result.metrics) line[name] = value;
    metrics_.record(line);
  }
  for (const Failure& failure : failures) {
    spdlog::warn("round {}: {} failed: {}", round, failure.client_id, failure.reason);
    metrics_.record({{"type", "client"},
                     {"phase", "fit"},
                     {"round", round},
                     {"client", failure.client_id},
                     {"status", "failed"},
                     {"reason", failure.reason}});
  }
  for (const FitResult& result : results) failed_last_.erase(result.client_id);
  for (const Failure& failure : failures) {
    if (clients_.contains(failure.client_id)) failed_last_.insert(failure.client_id);
  }
  for (const auto& [id, bytes] : bytes_down) bytes_down_ += bytes;
  for (const auto& [id, reply] : collected.replies) bytes_up_ += reply.bytes;
  failures_total_ += static_cast<std::int64_t>(failures.size());

  nlohmann::json record = {{"type", "round"},
                           {"round", round},
                           {"clients_sampled", instructed.size()},
                           {"clients_ok", static_cast<int>(results.size())},
                           {"clients_failed", static_cast<int>(failures.size())}};
  Accounting::BytesByClient bytes_up;
  for (const auto& [id, reply] : collected.replies) bytes_up[id] = reply.bytes;
  record.update(accounting_.add_round(results, bytes_down, bytes_up));
  if (static_cast<std::int64_t>(results.size()) < config_.min_fit_results) {
    spdlog::warn(
        "round {}: {} result(s), fewer than min_fit_results = {}; the global model is unchanged",
        round, results.size(), config_.min_fit_results);
    record["aggregated"] = false;
    return record;
  }
  const auto aggregate_started = Clock::now();
  const Metrics aggregated = strategy_->aggregate_fit(round, results, failures);
  record["aggregate_s"] = seconds_since(aggregate_started);
  double train_loss = 0, examples = 0;
  for (const FitResult& result : results) {
    if (const auto loss = result.metrics.find("train_loss"); loss != result.metrics.end()) {
      train_loss += loss->second * static_cast<double>(result.num_examples);
      examples += static_cast<double>(result.num_examples);
    }
  }
  if (examples > 0) record["train_loss"] = train_loss / examples;
  for (const auto& [name, value] : aggregated) record["strategy_" + name] = value;
  return record;
}

nlohmann::json Orchestrator::evaluate_round(int round) {
  const std::vector<std::string> ids = alive_ids();
  std::vector<EvaluateInstruction> instructions = strategy_->configure_evaluate(round, infos(ids));
  if (instructions.empty()) return {};
  const auto sent_at = Clock::now();
  std::map<std::string, wire::Envelope> instructed;
  for (EvaluateInstruction& instruction : instructions) {
    wire::Envelope envelope{
        static_cast<std::uint32_t>(round), wire::kServerId, instruction.client_id,
        wire::EvaluateInsBody{instruction.adapter.alpha, std::move(instruction.config)},
        to_named_tensors(instruction.adapter)};
    bytes_down_ += send(instruction.client_id, envelope);
    instructed.emplace(instruction.client_id, std::move(envelope));
  }
  Collected collected = collect(round, instructed, kEvaluateRes, sent_at);
  std::vector<EvaluateResult> results;
  for (auto& [id, reply] : collected.replies) {
    auto& body = std::get<wire::EvaluateResBody>(reply.envelope.body);
    results.push_back(EvaluateResult{id, body.num_examples, body.loss, body.metrics});
    nlohmann::json line = {{"type", "client"},  {"phase", "evaluate"},
                           {"round", round},    {"client", id},
                           {"status", "ok"},    {"num_examples", body.num_examples},
                           {"loss", body.loss}, {"rank", clients_.at(id).info.rank}};
    for (const auto& [name, value] : body.metrics) line[name] = value;
    metrics_.record(line);
  }
  for (const Failure& failure : collected.failures) {
    metrics_.record({{"type", "client"},
                     {"phase", "evaluate"},
                     {"round", round},
                     {"client", failure.client_id},
                     {"status", "failed"},
                     {"reason", failure.reason}});
  }
  nlohmann::json summary = nlohmann::json::object();
  for (const auto& [name, value] :
       strategy_->aggregate_evaluate(round, results, collected.failures)) {
    summary[name] = value;
  }
  return summary;
}

nlohmann::json Orchestrator::export_adapters() {
  nlohmann::json written = nlohmann::json::array();
  const NamedTensors delta = strategy_->global_delta();
  if (delta.empty()) return written;
  // The global model at its own rank, then each client rank's truncation.
  const PeftExporter exporter(delta);  // one SVD per layer for all the exports
  std::vector<std::pair<std::string, std::int64_t>> exports = {
      {"global", exporter.numerical_rank()}};
  const std::set<std::int64_t> ranks(config_.ranks.begin(), config_.ranks.end());
  if (ranks.size() > 1) {
    for (const std::int64_t rank : ranks)
      exports.emplace_back("rank-" + std::to_string(rank), rank);
  }
  for (const auto& [name, rank] : exports) {
    const std::filesystem::path directory = metrics_.output_dir() / "peft" / name;
    try {
      exporter.write(directory, rank, config_.alpha, spec_.model_id);
      written.push_back(std::filesystem::path("peft") / name);
    } catch (const std::exception& error) {
      // The run's results stand without it.
      spdlog::warn("could not export the PEFT adapter {}: {}", directory.string(), error.what());
    }
  }
  spdlog::info("PEFT adapters in {}", (metrics_.output_dir() / "peft").string());
  return written;
}

nlohmann::json Orchestrator::evaluate_global() {
  evaluator_->install_merged_delta(strategy_->global_delta());
  const EvalReport report = evaluator_->evaluate();
  nlohmann::json result = {{"loss", report.loss}};
  for (const auto& [name, value] : report.metrics) result[name] = value;
  return result;
}

}  // namespace lorafed
