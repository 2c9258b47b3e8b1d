#include "src/server/orchestrator.hpp"

#include <ATen/ATen.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <utility>

#include "lorafed/error.hpp"
#include "src/privacy/central_privacy.hpp"
#include "src/report/metric_format.hpp"
#include "src/run_configuration.hpp"
#include "src/sampling.hpp"
#include "src/server/update_checks.hpp"
#include "src/statistics.hpp"

namespace lorafed {
namespace {

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
    // Shares of examples in percent, as every table and figure shows them.
    if (shown_in_percent(name)) {
      text +=
          fmt::format("  {} {:.2f}%", name == "accuracy" ? "acc" : name, 100 * value.get<double>());
      if (evaluation.contains(name + "_std")) {
        text += fmt::format(" ± {:.2f}", 100 * evaluation[name + "_std"].get<double>());
      }
    } else if (value.is_number_float()) {
      text += fmt::format("  {} {:.4g}", name, value.get<double>());
    }
  }
  return text;
}

std::string format_duration(double seconds) {
  if (seconds < 120) return fmt::format("{:.1f}s", seconds);
  return fmt::format("{}m{:02d}s", static_cast<int>(seconds) / 60, static_cast<int>(seconds) % 60);
}

// What the server sent a client for a round's training: its reply must match.
struct SentFit {
  std::int64_t rank = 0;
  double alpha = 0;      // the scale s = α/r is the server's, not the client's
  bool control = false;  // a control variate went out, so one must come back
};

// A client's FitRes as a result to aggregate, or FormatError saying what is
// wrong with it (docs/protocol.md, "Validation").
FitResult checked_fit_result(const std::string& id, wire::FitResBody& body, NamedTensors tensors,
                             const ModelSpec& spec, const SentFit& sent,
                             std::int64_t registered_examples, int round) {
  CheckedUpdate update = check_update(std::move(tensors), body.alpha, spec, sent.rank);
  if (update.adapter.rank() != sent.rank) {
    throw FormatError("returned rank " + std::to_string(update.adapter.rank()) +
                      ", was sent rank " + std::to_string(sent.rank));
  }
  if (!update.adapter.layers.empty() && update.adapter.alpha != sent.alpha) {
    throw FormatError(
        fmt::format("returned alpha {:g}, was sent alpha {:g}", update.adapter.alpha, sent.alpha));
  }
  // A strategy that sent a control variate gets one back from every client
  // it counts, and one that sent none gets none.
  if (sent.control == update.control.layers.empty()) {
    throw FormatError(sent.control ? "no control variate returned, though one was sent"
                                   : "a control variate returned, though none was sent");
  }
  // A count above what it registered would inflate its weight.
  if (body.num_examples < 0 || body.num_examples > registered_examples) {
    throw FormatError("num_examples " + std::to_string(body.num_examples) + " is outside 0.." +
                      std::to_string(registered_examples) + " (what it registered with)");
  }
  if (const auto dropped = drop_non_finite(body.metrics); !dropped.empty()) {
    spdlog::warn("round {}: {} reported non-finite {}; left out", round, id,
                 fmt::join(dropped, ", "));
  }
  return FitResult{id,
                   std::move(update.adapter),
                   body.num_examples,
                   std::move(body.metrics),
                   std::move(update.parameters),
                   std::move(update.control)};
}

std::map<std::string, std::int64_t> configured_ranks(const FederationConfig& config) {
  std::map<std::string, std::int64_t> ranks;
  for (std::int64_t index = 0; index < config.num_clients; ++index) {
    ranks.emplace(FederationConfig::client_id(index), config.client_rank(index));
  }
  return ranks;
}

ServerLink::Options link_options(const FederationConfig& config) {
  return ServerLink::Options{config.encode, config.limits, config.heartbeat_interval()};
}

}  // namespace

Orchestrator::Orchestrator(const FederationConfig& config, std::shared_ptr<Strategy> strategy,
                           std::shared_ptr<ModelBackend> evaluator, Channel& channel,
                           MetricsWriter& metrics, const std::atomic<bool>* stop)
    : config_(config),
      strategy_(std::move(strategy)),
      evaluator_(std::move(evaluator)),
      spec_(evaluator_->spec()),
      stop_(stop),
      roster_(spec_, configured_ranks(config)),
      link_(channel, roster_, link_options(config), RuntimeClock::steady(), stop),
      heartbeat_(link_, config.heartbeat_interval()),
      collector_(link_, roster_, config.heartbeat_interval(), config.heartbeat_timeout_s),
      recorder_(config, spec_, metrics) {}

nlohmann::json Orchestrator::run() {
  try {
    return run_rounds();
  } catch (const Interrupted&) {
    // The clients stay: they rejoin the server resumed from its checkpoint.
    throw;
  } catch (const std::exception& error) {
    shutdown_clients(std::string("server stopped: ") + error.what());
    throw;
  }
}

void Orchestrator::shutdown_clients(const std::string& reason) {
  // A lost client learns it from the broker when it comes back.
  for (const std::string& id : roster_.ids()) {
    link_.send(wire::Envelope{0, wire::kServerId, id, wire::ShutdownBody{reason}, {}});
  }
}

void Orchestrator::throw_if_interrupted(const char* where) const {
  if (stop_ == nullptr || !*stop_) return;
  throw Interrupted(std::string("interrupted ") + where);
}

nlohmann::json Orchestrator::run_rounds() {
  strategy_->initialize(StrategyContext{spec_, config_.alpha, config_.seed, config_.num_clients});
  link_.heartbeat_if_due();  // the broker learns at once that the server is there

  // Round 0 is the base model: the strategy's initial global product, or for
  // a personalised strategy the clients' own models before any training.
  const bool personalised = strategy_->personalised();
  int first_round = 1;
  double elapsed_before = 0;  // seconds of rounds run before a resume
  if (resume_) {
    strategy_->load_state(resume_->state);
    progress_ = RunProgress::from_json(resume_->progress);
    accounting_.restore(progress_.accounting);
    elapsed_before = progress_.elapsed_s;
    first_round = resume_->round + 1;
    spdlog::info("resuming after round {} of {}", resume_->round, config_.rounds);
    resume_.reset();  // the state is in the strategy now
    await_registrations();
  } else {
    if (!personalised) progress_.base = evaluate_global();
    await_registrations();
    if (personalised) progress_.base = evaluate_round(0);
    nlohmann::json base_record = progress_.base;
    base_record.update({{"type", "round"}, {"round", 0}, {"elapsed_s", 0.0}});
    recorder_.round(base_record);
    spdlog::info("{}: {}", personalised ? "clients' models before training" : "base model",
                 progress_.base.contains("loss") ? describe_quality(progress_.base)
                                                 : "(no client evaluated)");
    progress_.last = progress_.base;
    progress_.best.add(0, progress_.base);
  }

  // Elapsed time counts rounds only: waiting for clients is not the run's.
  const auto started = Clock::now();
  auto elapsed = [&] { return elapsed_before + seconds_since(started); };
  for (int round = first_round; round <= config_.rounds; ++round) {
    const auto round_started = Clock::now();
    nlohmann::json record = fit_round(round);
    throw_if_interrupted(fmt::format("in round {}", round).c_str());
    const bool evaluated = config_.evaluate_every > 0 &&
                           (round % config_.evaluate_every == 0 || round == config_.rounds);
    if (evaluated) {
      const auto eval_started = Clock::now();
      // Personalised: the mean over clients of their own models.
      progress_.last = personalised ? evaluate_round(round) : evaluate_global();
      progress_.best.add(round, progress_.last);
      record.update(progress_.last);
      record["evaluate_s"] = seconds_since(eval_started);
    }
    if (!personalised) {
      if (nlohmann::json federated = evaluate_round(round); !federated.empty()) {
        record["federated_evaluation"] = federated;
        progress_.last_federated = std::move(federated);
      }
    }
    throw_if_interrupted(fmt::format("in round {}", round).c_str());
    const double round_s = seconds_since(round_started);
    progress_.round_seconds.push_back(round_s);
    progress_.accounting = accounting_.save();
    progress_.elapsed_s = elapsed();
    record["round_s"] = round_s;
    record["elapsed_s"] = progress_.elapsed_s;
    recorder_.round(record);
    recorder_.checkpoint(round, strategy_->state(), progress_);
    if (status_ != nullptr) {
      status_->record_round(record, progress_.bytes_down, progress_.bytes_up,
                            progress_.client_failures);
      publish_clients();
    }

    const double mean_round =
        std::accumulate(progress_.round_seconds.begin(), progress_.round_seconds.end(), 0.0) /
        static_cast<double>(progress_.round_seconds.size());
    // The privacy spent so far, where [privacy] is on (docs/privacy.md).
    const std::string privacy =
        progress_.privacy.contains("privacy_epsilon")
            ? fmt::format("  privacy ε {:.4g} (δ {:g})",
                          progress_.privacy["privacy_epsilon"].get<double>(),
                          progress_.privacy["privacy_delta"].get<double>())
            : "";
    spdlog::info("round {}/{}  clients {} ok, {} failed  {}{}  elapsed {}  ETA {}", round,
                 config_.rounds, record["clients_ok"].get<int>(),
                 record["clients_failed"].get<int>(),
                 evaluated && progress_.last.contains("loss") ? describe_quality(progress_.last)
                                                              : "(not evaluated)",
                 privacy, format_duration(progress_.elapsed_s),
                 format_duration(mean_round * (config_.rounds - round)));
    throw_if_interrupted(fmt::format("after round {}", round).c_str());
  }

  shutdown_clients("federation finished");

  nlohmann::json summary = {
      {"strategy", config_.strategy_name},
      {"model", config_.model_name},
      {"transport", config_.transport_name},
      {"rounds", config_.rounds},
      {"clients_registered", roster_.size()},
      {"seed", config_.seed},
      {"client_failures", progress_.client_failures},
      {"personalised", personalised},
      {"bytes_down", progress_.bytes_down},
      {"bytes_up", progress_.bytes_up},
      {"elapsed_s", elapsed()},
      {"round_s", progress_.round_seconds},
  };
  // base_<metric> and final_<metric> for the loss and every metric the model reports.
  summary["settings"] = run_settings(config_);
  for (const auto& [name, value] : progress_.base.items()) summary["base_" + name] = value;
  for (const auto& [name, value] : progress_.last.items()) summary["final_" + name] = value;
  for (const auto& [name, value] : progress_.last_federated.items()) {
    summary["final_federated_" + name] = value;
  }
  summary.update(progress_.best.summary());
  summary.update(accounting_.summary());
  summary.update(progress_.privacy);
  if (!personalised) {
    // The server's own model: its base is the one the global change applies to.
    summary.update(recorder_.export_adapters(strategy_->global_delta(), *evaluator_));
  }
  recorder_.summary(summary);
  if (status_ != nullptr) status_->set_state("finished");
  return summary;
}

std::int64_t Orchestrator::await_clients(std::int64_t wanted) {
  const RuntimeClock& clock = link_.clock();
  const auto deadline =
      clock.now() + FederationConfig::milliseconds(config_.registration_timeout_s);
  auto alive = [this] { return static_cast<std::int64_t>(roster_.alive_count()); };
  // Waiting is said, not silent: every 10 s, how many are there.
  constexpr auto kReportEvery = std::chrono::seconds(10);
  auto next_report = clock.now() + kReportEvery;
  while (alive() < wanted && clock.now() < deadline) {
    throw_if_interrupted("while waiting for clients");
    if (auto received = link_.receive_until(std::min(deadline, next_report))) {
      // Results of a round that is over (a server restarted in mid-round).
      spdlog::info("discarding {} from {} for round {} (no round is open)",
                   wire::body_name(received->envelope.body), received->envelope.sender,
                   received->envelope.round);
    }
    if (clock.now() >= next_report && alive() < wanted) {
      spdlog::info(
          "waiting for clients: {} of {} registered on {} ({:.0f}s left of "
          "registration_timeout_s)",
          alive(), wanted, config_.endpoint,
          std::chrono::duration<double>(deadline - clock.now()).count());
      next_report = clock.now() + kReportEvery;
    }
  }
  throw_if_interrupted("while waiting for clients");
  return alive();
}

void Orchestrator::await_registrations() {
  if (status_ != nullptr) status_->set_state("waiting for clients");
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
  if (status_ != nullptr) status_->set_state("running");
}

void Orchestrator::publish_clients() {
  if (status_ == nullptr) return;
  std::int64_t healthy = 0;
  for (const std::string& id : roster_.alive_ids()) healthy += failed_last_.contains(id) ? 0 : 1;
  status_->set_clients(static_cast<std::int64_t>(roster_.size()), healthy);
}

nlohmann::json Orchestrator::fit_round(int round) {
  if (static_cast<std::int64_t>(roster_.alive_count()) < config_.min_fit_clients) {
    spdlog::warn("round {}: fewer than min_fit_clients = {} clients alive; waiting up to {:g}s",
                 round, config_.min_fit_clients, config_.registration_timeout_s);
    if (await_clients(config_.min_fit_clients) == 0) {
      throw Error("no client is alive after waiting registration_timeout_s = " +
                  fmt::format("{:g}s", config_.registration_timeout_s));
    }
  }
  const std::vector<std::string>& alive = roster_.alive_ids();
  const std::vector<std::string> sampled = sample_clients(
      alive, config_.fraction_fit, config_.min_fit_clients, config_.sampling_seed, round);
  // Central privacy's sample rate is over the clients sampled from.
  if (auto* central = dynamic_cast<CentralPrivacy*>(strategy_.get())) {
    central->set_population(static_cast<std::int64_t>(alive.size()));
  }

  std::vector<FitInstruction> instructions =
      strategy_->configure_fit(round, roster_.infos(sampled));
  std::map<std::string, SentFit> sent;
  std::map<std::string, wire::Envelope> instructed;
  for (FitInstruction& instruction : instructions) {
    if (!roster_.contains(instruction.client_id)) {
      throw Error("strategy '" + config_.strategy_name + "' instructed unknown client '" +
                  instruction.client_id + "'");
    }
    if (sent.contains(instruction.client_id)) {
      throw Error("strategy '" + config_.strategy_name + "' instructed client '" +
                  instruction.client_id + "' twice in round " + std::to_string(round));
    }
    sent[instruction.client_id] =
        SentFit{instruction.adapter.rank(),
                instruction.adapter.layers.empty() ? config_.alpha : instruction.adapter.alpha,
                !instruction.control.layers.empty()};
    NamedTensors tensors = to_named_tensors(instruction.adapter);
    for (auto& [name, tensor] : to_named_tensors(instruction.merge)) {
      tensors.emplace(wire::kMergePrefix + name, tensor);
    }
    for (auto& [name, tensor] : instruction.parameters) {
      tensors.emplace(wire::kParameterPrefix + name, tensor);
    }
    for (auto& [name, tensor] : to_named_tensors(instruction.control)) {
      tensors.emplace(wire::kControlPrefix + name, tensor);
    }
    instructed.emplace(
        instruction.client_id,
        wire::Envelope{static_cast<std::uint32_t>(round), wire::kServerId, instruction.client_id,
                       wire::FitInsBody{instruction.adapter.alpha, std::move(instruction.config),
                                        instruction.merge.alpha},
                       std::move(tensors)});
  }

  // Each reply is checked as it arrives, while the other clients still train;
  // the results are aggregated in client-id order, whatever the arrival order.
  std::map<std::string, FitResult> checked;
  std::map<std::string, Failure> rejected;
  auto check_reply = [&](const std::string& id, RoundCollector::Reply& reply) {
    auto& body = std::get<wire::FitResBody>(reply.envelope.body);
    try {
      checked.emplace(id, checked_fit_result(id, body, std::move(reply.envelope.tensors), spec_,
                                             sent.at(id), roster_.info(id).num_examples, round));
    } catch (const FormatError& error) {
      rejected.emplace(id, Failure{id, std::string("invalid update: ") + error.what()});
      link_.send_error(id, wire::ErrorCode::kInvalidTensor, error.what());
    }
  };
  RoundCollector::Outcome collected =
      collector_.run(static_cast<std::uint32_t>(round), instructed, wire::BodyKind::kFitRes,
                     FederationConfig::milliseconds(config_.round_timeout_s), check_reply);
  // An interrupted round leaves no trace: the resumed run does it again.
  throw_if_interrupted(fmt::format("in round {}", round).c_str());
  std::vector<FitResult> results;
  results.reserve(checked.size());
  for (auto& [id, result] : checked) results.push_back(std::move(result));
  std::vector<Failure> failures = std::move(collected.failures);
  for (auto& [id, failure] : rejected) failures.push_back(std::move(failure));

  RunRecorder::ClientFields lines;
  lines.reserve(results.size());
  for (const FitResult& result : results) {
    const RoundCollector::Reply& reply = collected.replies.at(result.client_id);
    nlohmann::json fields = {{"rank", result.adapter.rank()},
                             {"num_examples", result.num_examples},
                             {"seconds", reply.seconds},
                             {"bytes_down", collected.bytes_down[result.client_id]},
                             {"bytes_up", reply.bytes}};
    // A client's metric never replaces what the server measured.
    for (const auto& [name, value] : result.metrics) fields.emplace(name, value);
    lines.emplace_back(result.client_id, std::move(fields));
  }
  for (const Failure& failure : failures) {
    spdlog::warn("round {}: {} failed: {}", round, failure.client_id, failure.reason);
  }
  recorder_.client_results("fit", round, lines, failures);
  for (const FitResult& result : results) failed_last_.erase(result.client_id);
  for (const Failure& failure : failures) {
    if (roster_.contains(failure.client_id)) failed_last_.insert(failure.client_id);
  }
  for (const auto& [id, bytes] : collected.bytes_down) progress_.bytes_down += bytes;
  for (const auto& [id, reply] : collected.replies) progress_.bytes_up += reply.bytes;
  progress_.client_failures += static_cast<std::int64_t>(failures.size());

  nlohmann::json record = {{"type", "round"},
                           {"round", round},
                           {"clients_sampled", instructed.size()},
                           {"clients_ok", static_cast<int>(results.size())},
                           {"clients_failed", static_cast<int>(failures.size())}};
  Accounting::BytesByClient bytes_up;
  for (const auto& [id, reply] : collected.replies) bytes_up[id] = reply.bytes;
  record.update(accounting_.add_round(results, collected.bytes_down, bytes_up));
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
  for (const auto& [name, value] : aggregated) {
    record["strategy_" + name] = value;
    // The privacy spent so far, for summary.json (docs/privacy.md).
    if (name.starts_with("privacy_")) progress_.privacy[name] = value;
  }
  return record;
}

nlohmann::json Orchestrator::evaluate_round(int round) {
  std::vector<EvaluateInstruction> instructions =
      strategy_->configure_evaluate(round, roster_.alive_infos());
  if (instructions.empty()) return {};
  std::map<std::string, wire::Envelope> instructed;
  for (EvaluateInstruction& instruction : instructions) {
    instructed.emplace(
        instruction.client_id,
        wire::Envelope{
            static_cast<std::uint32_t>(round), wire::kServerId, instruction.client_id,
            wire::EvaluateInsBody{instruction.adapter.alpha, std::move(instruction.config)},
            to_named_tensors(instruction.adapter)});
  }
  RoundCollector::Outcome collected =
      collector_.run(static_cast<std::uint32_t>(round), instructed, wire::BodyKind::kEvaluateRes,
                     FederationConfig::milliseconds(config_.round_timeout_s));
  throw_if_interrupted(fmt::format("in round {}", round).c_str());
  for (const auto& [id, bytes] : collected.bytes_down) progress_.bytes_down += bytes;
  std::vector<EvaluateResult> results;
  std::vector<Failure> failures = std::move(collected.failures);
  RunRecorder::ClientFields lines;
  for (auto& [id, reply] : collected.replies) {
    auto& body = std::get<wire::EvaluateResBody>(reply.envelope.body);
    if (body.num_examples < 0 || body.num_examples > ClientRoster::kMaxExamples ||
        !std::isfinite(body.loss)) {
      failures.push_back(Failure{id, "invalid evaluation: num_examples " +
                                         std::to_string(body.num_examples) + ", loss " +
                                         std::to_string(body.loss)});
      continue;
    }
    if (const auto dropped = drop_non_finite(body.metrics); !dropped.empty()) {
      spdlog::warn("round {}: {} reported non-finite {}; left out", round, id,
                   fmt::join(dropped, ", "));
    }
    results.push_back(EvaluateResult{id, body.num_examples, body.loss, body.metrics});
    nlohmann::json fields = {
        {"num_examples", body.num_examples}, {"loss", body.loss}, {"rank", roster_.info(id).rank}};
    for (const auto& [name, value] : body.metrics) fields.emplace(name, value);
    lines.emplace_back(id, std::move(fields));
  }
  recorder_.client_results("evaluate", round, lines, failures);
  nlohmann::json summary = nlohmann::json::object();
  for (const auto& [name, value] : strategy_->aggregate_evaluate(round, results, failures)) {
    summary[name] = value;
  }
  return summary;
}

nlohmann::json Orchestrator::evaluate_global() {
  evaluator_->install_merged_delta(strategy_->global_delta());
  const EvalReport report = evaluator_->evaluate();
  nlohmann::json result = {{"loss", report.loss}};
  for (const auto& [name, value] : report.metrics) result[name] = value;
  return result;
}

}  // namespace lorafed
