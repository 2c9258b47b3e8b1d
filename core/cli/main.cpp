// The `lorafed` command line (docs/configuration.md).
#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <iostream>
#include <thread>

#include "cli/aggregate_command.hpp"
#include "cli/inspect_command.hpp"
#include "cli/keygen_command.hpp"
#include "cli/new_command.hpp"
#include "cli/plugins_command.hpp"
#include "cli/report_command.hpp"
#include "cli/sweep_command.hpp"
#include "lorafed/error.hpp"
#include "lorafed/log.hpp"
#include "lorafed/version.hpp"
#include "src/allocator_tuning.hpp"
#include "src/client/client_list.hpp"
#include "src/federation_config.hpp"
#include "src/runs.hpp"
#include "src/stop_signal.hpp"

namespace {

struct RunOptions {
  std::string config_path;
  std::vector<std::string> overrides;
  std::string output_dir;
  std::string log_level;
};

void add_run_options(CLI::App& command, RunOptions& options) {
  command.add_option("CONFIG", options.config_path, "federation configuration (TOML)")
      ->required()
      ->check(CLI::ExistingFile);
  command.add_option("--set", options.overrides, "override a key: section.key=value (repeatable)");
  command.add_option("--out", options.output_dir,
                     "output folder (default: [federation] output_dir)");
  command.add_option("--log-level", options.log_level, "trace, debug, info, warn, error, off");
}

lorafed::FederationConfig load(const RunOptions& options) {
  lorafed::FederationConfig config =
      lorafed::FederationConfig::load(options.config_path, options.overrides);
  if (!options.output_dir.empty()) config.output_dir = options.output_dir;
  lorafed::configure_logging(options.log_level.empty() ? config.log_level : options.log_level);
  // One LibTorch thread per process or worker: results do not depend on the
  // machine's core count, and simulated clients do not oversubscribe cores.
  at::set_num_threads(1);
  return config;
}

void print_summary(const nlohmann::json& summary) {
  std::string outcome =
      fmt::format("loss {:.4f} (base {:.4f})", summary["final_loss"].get<double>(),
                  summary["base_loss"].get<double>());
  if (summary.contains("final_accuracy")) {
    outcome = fmt::format("accuracy {:.2f}% (base {:.2f}%)",
                          100 * summary["final_accuracy"].get<double>(),
                          100 * summary["base_accuracy"].get<double>());
  }
  spdlog::info("done: {}, {} client failures, {:.1f}s; metrics in {}", outcome,
               summary["client_failures"].get<std::int64_t>(), summary["elapsed_s"].get<double>(),
               summary.value("output_dir", std::string("the output folder")));
}

}  // namespace

int main(int argc, char** argv) {
  lorafed::keep_freed_memory_for_reuse();
  CLI::App app{"lorafed: federated fine-tuning with heterogeneous LoRA adapters"};
  app.set_version_flag("--version", std::string("lorafed ") + lorafed::kFrameworkVersion +
                                        " (ABI " + std::to_string(lorafed::kAbiVersion) + ")");
  app.require_subcommand(1);

  RunOptions simulate_options;
  CLI::App* simulate =
      app.add_subcommand("simulate", "run server and N virtual clients in one process");
  add_run_options(*simulate, simulate_options);

  std::string simulate_resume;
  simulate
      ->add_option("--resume", simulate_resume,
                   "continue the run in this output folder after its last checkpointed round")
      ->check(CLI::ExistingDirectory);

  RunOptions server_options;
  std::string server_resume;
  CLI::App* server = app.add_subcommand("server", "run the server of a federation");
  add_run_options(*server, server_options);
  server
      ->add_option("--resume", server_resume,
                   "continue the run in this output folder after its last checkpointed round")
      ->check(CLI::ExistingDirectory);

  RunOptions broker_options;
  CLI::App* broker = app.add_subcommand(
      "broker", "run the message broker that the server and the clients connect to");
  add_run_options(*broker, broker_options);

  std::string keygen_name;
  std::string keygen_transport = "zmq";
  CLI::App* keygen = app.add_subcommand(
      "keygen", "write a key pair for a transport (zmq: CURVE, NAME.key mode 600 and NAME.pub)");
  keygen->add_option("NAME", keygen_name, "path and stem of the key files")->required();
  keygen->add_option("--transport", keygen_transport, "the transport plugin whose keys to make")
      ->capture_default_str();

  RunOptions client_options;
  std::int64_t client_index = -1;
  std::string client_list;
  std::size_t client_threads = 0;
  CLI::App* client = app.add_subcommand(
      "client", "run one client of a federation, or several over one connection");
  add_run_options(*client, client_options);
  CLI::Option* id_option =
      client->add_option("--id", client_index, "client index, 0 .. num_clients-1");
  CLI::Option* clients_option =
      client->add_option("--clients", client_list,
                         "client indices and ranges, e.g. 0-249 or 0,3,10-19 (one process "
                         "serves them all)");
  id_option->excludes(clients_option);
  client->add_option("--threads", client_threads,
                     "workers training clients at once (default: the cores, at most one per "
                     "client; one LibTorch thread each)");

  bool show_path = false;
  CLI::App* plugins =
      app.add_subcommand("plugins", "list the plugins found, with versions and rejections");
  plugins->add_flag("--path", show_path, "also print the search path");

  lorafed::cli::AggregateOptions aggregate_options;
  CLI::App* aggregate = app.add_subcommand(
      "aggregate", "run one strategy's server step offline on files (state + clients' factors)");
  aggregate->add_option("--strategy", aggregate_options.strategy, "strategy plugin name");
  aggregate
      ->add_option("--config", aggregate_options.config,
                   "TOML whose [strategy] table configures it")
      ->check(CLI::ExistingFile);
  aggregate
      ->add_option("--state", aggregate_options.state, "strategy state to start from (safetensors)")
      ->check(CLI::ExistingFile);
  aggregate
      ->add_option("--client", aggregate_options.clients,
                   "a client's returned factors: PATH[:EXAMPLES] (safetensors, <layer>.lora_A/B)")
      ->required();
  aggregate->add_option("--out", aggregate_options.output, "where to write the new state")
      ->required();
  aggregate->add_option("--alpha", aggregate_options.alpha,
                        "LoRA alpha when a file has no lora_alpha metadata");
  aggregate->add_option("--round", aggregate_options.round,
                        "round number (seeds fresh directions)");
  aggregate->add_option("--seed", aggregate_options.seed, "federation seed");

  lorafed::cli::NewOptions new_options;
  CLI::App* scaffold =
      app.add_subcommand("new", "write a plugin project that builds against the installed lorafed");
  scaffold->add_option("KIND", new_options.kind, "strategy, model or transport")
      ->required()
      ->check(CLI::IsMember({"strategy", "model", "transport"}));
  scaffold->add_option("NAME", new_options.name, "the plugin's name (lower case, digits, _)")
      ->required();
  scaffold->add_option("DIR", new_options.directory, "where to write it (default: NAME)");

  lorafed::cli::SweepOptions sweep_options;
  CLI::App* sweep = app.add_subcommand(
      "sweep", "run a grid of simulated federations ([sweep] table) and tabulate them");
  sweep->add_option("CONFIG", sweep_options.config, "federation configuration with a [sweep] table")
      ->required()
      ->check(CLI::ExistingFile);
  sweep->add_option("--set", sweep_options.overrides,
                    "override a key of the base: section.key=value (repeatable)");
  sweep->add_option("--out", sweep_options.output_dir,
                    "folder for the run directories (default: [federation] output_dir)");
  sweep->add_option("--log-level", sweep_options.log_level, "the runs' log level");
  sweep->add_flag("--dry-run", sweep_options.dry_run, "list the run directories, run nothing");

  std::string inspect_path;
  CLI::App* inspect =
      app.add_subcommand("inspect", "print an adapter's layers, ranks, norms and singular values");
  inspect
      ->add_option("FILE", inspect_path,
                   "PEFT adapter directory, adapter_model.safetensors, or any safetensors file")
      ->required();

  lorafed::cli::ReportOptions report_options;
  CLI::App* report = app.add_subcommand(
      "report", "plot runs and sweeps with gnuplot and write report.md beside the figures");
  report->add_option("RUN_DIR", report_options.run_dirs, "run directories or sweep directories")
      ->required()
      ->check(CLI::ExistingDirectory);
  report->add_option("--out", report_options.output_dir,
                     "where the report goes (default: RUN_DIR/report for one, else ./report)");
  report->add_option("--metric", report_options.metric,
                     "the headline metric (default: accuracy, or the first the runs report)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // app.exit prints the help, the version or the error. --help and
    // --version exit 0; every parser error is a usage error, exit 2 as a
    // configuration error (docs/configuration.md §Exit codes), never CLI11's
    // own 100-odd codes.
    return app.exit(error) == static_cast<int>(CLI::ExitCodes::Success) ? 0 : 2;
  }

  try {
    lorafed::configure_logging("info");
    const lorafed::PluginRegistry registry;
    if (*simulate) {
      auto config = load(simulate_options);
      if (!simulate_resume.empty()) config.output_dir = simulate_resume;
      auto summary = lorafed::run_simulation(config, registry, simulate_resume);
      // Under mpirun only process 0 runs the server and has a summary.
      if (summary.is_null()) return 0;
      summary["output_dir"] = config.output_dir.string();
      print_summary(summary);
    } else if (*server) {
      auto config = load(server_options);
      if (!server_resume.empty()) config.output_dir = server_resume;
      auto summary = lorafed::run_server(config, registry, server_resume);
      summary["output_dir"] = config.output_dir.string();
      print_summary(summary);
    } else if (*client) {
      auto config = load(client_options);
      if (id_option->count() + clients_option->count() == 0) {
        throw lorafed::ConfigError("lorafed client needs --id K or --clients LIST");
      }
      const std::vector<std::int64_t> indices =
          id_option->count() > 0 ? std::vector<std::int64_t>{client_index}
                                 : lorafed::parse_client_list(client_list, config.num_clients);
      const std::size_t threads =
          client_threads > 0
              ? client_threads
              : std::min<std::size_t>(std::max(1U, std::thread::hardware_concurrency()),
                                      indices.size());
      switch (lorafed::run_client(config, registry, indices, threads)) {
        case lorafed::ClientOutcome::kShutdown:
          return 0;
        case lorafed::ClientOutcome::kInterrupted:
          return lorafed::StopSignal::kExitCode;
        case lorafed::ClientOutcome::kServerSilent:
        case lorafed::ClientOutcome::kRefused:
          return 3;
      }
    } else if (*broker) {
      lorafed::run_broker(load(broker_options), registry);
    } else if (*keygen) {
      return lorafed::cli::keygen(keygen_name, registry, keygen_transport, std::cout);
    } else if (*aggregate) {
      return lorafed::cli::aggregate(aggregate_options, registry);
    } else if (*report) {
      return lorafed::cli::report(report_options, std::cout);
    } else if (*inspect) {
      return lorafed::cli::inspect(inspect_path, std::cout);
    } else if (*sweep) {
      return lorafed::cli::sweep(sweep_options, registry, std::cout);
    } else if (*scaffold) {
      return lorafed::cli::new_plugin(new_options, std::cout);
    } else if (*plugins) {
      return lorafed::cli::list_plugins(registry, show_path, std::cout);
    }
  } catch (const lorafed::Interrupted& error) {
    // Records and the checkpoint of the last complete round are on disk.
    std::cerr << "stopped: " << error.what() << "; continue with --resume\n";
    return lorafed::StopSignal::kExitCode;
  } catch (const lorafed::ConfigError& error) {
    std::cerr << "configuration error: " << error.what() << "\n";
    return 2;
  } catch (const std::exception& error) {
    std::cerr << "error: " << error.what() << "\n";
    return 1;
  }
  return 0;
}
