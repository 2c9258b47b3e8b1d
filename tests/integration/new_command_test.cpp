// `lorafed new`: what it writes and what it refuses. Building and running
// the projects it writes is scripts/test-install.sh's job (against an
// installed lorafed, as a user would).
#include <catch2/catch.hpp>

#include <cctype>
#include <fstream>

#include "integration/process.hpp"

using lorafed::test::Process;
using lorafed::test::read_file;
namespace fs = std::filesystem;

namespace {

struct Outcome {
  int code;
  std::string output;
};

Outcome run_new(const std::vector<std::string>& arguments, const fs::path& log) {
  std::vector<std::string> argv = {LORAFED_EXECUTABLE, "new"};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  Process process(argv, log);
  const auto code = process.wait(std::chrono::seconds(30));
  REQUIRE(code.has_value());
  return {*code, read_file(log)};
}

}  // namespace

TEST_CASE("lorafed new writes a plugin project for each kind", "[new]") {
  const fs::path work = fs::path(LORAFED_TEST_WORK_DIR) / "new";
  fs::remove_all(work);
  fs::create_directories(work);
  for (const std::string kind : {"strategy", "model", "transport"}) {
    const fs::path project = work / ("my_" + kind);
    const Outcome outcome = run_new({kind, "my_" + kind, project.string()}, work / (kind + ".log"));
    INFO(outcome.output);
    REQUIRE(outcome.code == 0);
    const std::string cmake = read_file(project / "CMakeLists.txt");
    CHECK_THAT(cmake, Catch::Contains("find_package(lorafed REQUIRED)"));
    CHECK_THAT(cmake, Catch::Contains("lorafed_add_plugin(my_" + kind + " KIND " + kind));
    const std::string source = read_file(project / ("my_" + kind + ".cpp"));
    std::string macro = kind;
    for (char& c : macro) c = static_cast<char>(std::toupper(c));
    CHECK_THAT(source, Catch::Contains("LORAFED_" + macro + "_PLUGIN(\"my_" + kind + "\""));
    CHECK_THAT(source, !Catch::Contains("@NAME@"));
    const std::string config = read_file(project / ("my_" + kind + ".toml"));
    CHECK_THAT(config, Catch::Contains("name = \"my_" + kind + "\""));
    CHECK_THAT(read_file(project / "README.md"),
               Catch::Contains("LORAFED_PLUGIN_PATH=build/plugins"));
  }
}

TEST_CASE("lorafed new refuses bad names and non-empty folders", "[new]") {
  const fs::path work = fs::path(LORAFED_TEST_WORK_DIR) / "new-refusals";
  fs::remove_all(work);
  fs::create_directories(work / "taken");
  { std::ofstream(work / "taken" / "file.txt") << "mine"; }

  Outcome outcome = run_new({"strategy", "Bad-Name", (work / "x").string()}, work / "name.log");
  CHECK(outcome.code == 2);
  CHECK_THAT(outcome.output, Catch::Contains("lower-case letters"));
  CHECK_FALSE(fs::exists(work / "x"));

  outcome = run_new({"strategy", "fine", (work / "taken").string()}, work / "taken.log");
  CHECK(outcome.code == 2);
  CHECK_THAT(outcome.output, Catch::Contains("not empty"));
  CHECK(read_file(work / "taken" / "file.txt") == "mine");

  outcome = run_new({"widget", "fine", (work / "y").string()}, work / "kind.log");
  CHECK(outcome.code != 0);
}
