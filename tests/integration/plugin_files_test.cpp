// Plugin files that cannot be trusted to load: `lorafed` refuses them by
// name and goes on, instead of the dynamic loader faulting on them.
#include <catch2/catch.hpp>

#include "integration/federation_runs.hpp"
#include "truncated_plugin.hpp"

using Catch::Matchers::Contains;
using lorafed::test::command;
using lorafed::test::fresh_dir;
using lorafed::test::kEnv;
using lorafed::test::Process;
using lorafed::test::read_file;
namespace fs = std::filesystem;

namespace {

// A folder holding the built FedAvg plugin cut inside its loadable segments
// (where dlopen faulted), under its own name, so that it shadows the real
// one in the search path.
fs::path folder_with_truncated_fedavg(const std::string& name) {
  const fs::path built = fs::path(LORAFED_BUILD_PLUGIN_DIR) / "lorafed-strategy-fedavg.so";
  const fs::path folder = fresh_dir(name) / "plugins";
  lorafed::test::truncated_copy(built, folder, lorafed::test::loadable_end(built) / 2);
  return folder;
}

}  // namespace

TEST_CASE("lorafed plugins lists a truncated plugin file as rejected and exits 0",
          "[plugins][truncated-plugin]") {
  const fs::path folder = folder_with_truncated_fedavg("truncated-plugin-list");
  const fs::path log = folder.parent_path() / "plugins.log";
  std::map<std::string, std::string> env = kEnv;
  env["LORAFED_PLUGIN_PATH"] = folder.string();
  Process lorafed({LORAFED_EXECUTABLE, "plugins"}, log, env);
  const auto code = lorafed.wait(std::chrono::seconds(60));
  const std::string output = read_file(log);
  INFO(output);
  REQUIRE(code.has_value());
  CHECK(*code == 0);  // before the ELF checks: 135, SIGBUS
  const std::string copy = (folder / "lorafed-strategy-fedavg.so").string();
  CHECK_THAT(output, Contains("rejected:") && Contains(copy + ": plugin '" + copy + "'") &&
                         Contains("truncated: segment"));
  // The other plugins are still listed as usable, above the rejected ones.
  CHECK_THAT(output.substr(0, output.find("rejected:")), Contains("lorafed-strategy-fedhl.so"));
}

TEST_CASE("a federation whose strategy plugin file is truncated stops with an error naming it",
          "[plugins][truncated-plugin]") {
  const fs::path folder = folder_with_truncated_fedavg("truncated-plugin-run");
  const fs::path out = folder.parent_path() / "out";
  std::map<std::string, std::string> env = kEnv;
  env["LORAFED_PLUGIN_PATH"] = folder.string();
  Process lorafed(command("simulate", out), folder.parent_path() / "simulate.log", env);
  const auto code = lorafed.wait(std::chrono::seconds(120));
  const std::string output = read_file(folder.parent_path() / "simulate.log");
  INFO(output);
  REQUIRE(code.has_value());
  CHECK(*code == 1);  // a runtime error, reported; not a signal
  CHECK_THAT(output,
             Contains((folder / "lorafed-strategy-fedavg.so").string()) && Contains("truncated"));
}
