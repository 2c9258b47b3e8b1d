// The mpi transport: `mpirun -n 3 lorafed simulate` against the same
// federation in one process. Built only where Open MPI is (CI installs it).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "integration/federation_runs.hpp"
#include "integration/process.hpp"

using namespace lorafed::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// FedHL with a rank per client, so a client on the wrong process or a
// factor lost in transit changes the numbers.
const std::vector<std::string> kFedHL = {"--set", "strategy.name=\"fedhl\"", "--set",
                                         "lora.ranks=[2, 4, 8]"};

// `mpirun -n PROCESSES lorafed simulate tiny-fmnist.toml --out OUT` over mpi.
std::vector<std::string> mpirun(int processes, const fs::path& out,
                                const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {LORAFED_MPIEXEC,          "--allow-run-as-root",
                                   "--oversubscribe",        "-x",
                                   "LORAFED_CACHE_DIR",      "-n",
                                   std::to_string(processes)};
  return join(join(argv, command("simulate", out, {"--set", "transport.name=\"mpi\""})), extra);
}

}  // namespace

TEST_CASE("mpirun -n 3 lorafed simulate over mpi gives the numbers of an inproc simulation",
          "[mpi]") {
  const fs::path inproc_out = fresh_dir("mpi-reference");
  Process reference(
      command("simulate", inproc_out, join({"--set", "transport.name=\"inproc\""}, kFedHL)),
      inproc_out / "simulate.log", kEnv);
  REQUIRE(reference.wait(std::chrono::seconds(300)) == 0);
  const json expected = read_summary(inproc_out);

  const fs::path mpi_out = fresh_dir("mpi");
  Process job(mpirun(3, mpi_out, kFedHL), mpi_out / "mpirun.log", kEnv);
  const auto code = job.wait(std::chrono::seconds(300));
  const std::string log = read_file(mpi_out / "mpirun.log");
  INFO(log);
  REQUIRE(code == 0);
  const json got = read_summary(mpi_out);
  INFO(got.dump(2));
  CHECK(got["transport"] == "mpi");
  CHECK(got["rounds"] == 3);
  CHECK(got["clients_registered"] == 3);
  CHECK(got["client_failures"] == 0);
  CHECK(got["final_accuracy"].get<double>() == expected["final_accuracy"].get<double>());
  CHECK(got["final_loss"].get<double>() ==
        Approx(expected["final_loss"].get<double>()).epsilon(1e-9));
  // Clients 0 and 2 on process 1, client 1 on process 2.
  CHECK_THAT(log, Catch::Matchers::Contains("2 clients (clients-0-2)"));
  CHECK_THAT(log, Catch::Matchers::Contains("client-1 (rank 4) connecting"));
}

TEST_CASE("the mpi transport refuses one process, and a separate server", "[mpi]") {
  const fs::path out = fresh_dir("mpi-refused");
  Process alone(mpirun(1, out, {}), out / "alone.log", kEnv);
  CHECK(alone.wait(std::chrono::seconds(120)) != 0);
  CHECK_THAT(read_file(out / "alone.log"), Catch::Matchers::Contains("start at least 2"));

  Process server(join(command("server", out), {"--set", "transport.name=\"mpi\""}),
                 out / "server.log", kEnv);
  CHECK(server.wait(std::chrono::seconds(120)) == 2);
  CHECK_THAT(read_file(out / "server.log"),
             Catch::Matchers::Contains("connects the processes of one launch"));
}
