#include <catch2/catch.hpp>

#include <fstream>

#include "lorafed/error.hpp"
#include "lorafed/version.hpp"
#include "src/plugin_registry.hpp"

using Catch::Matchers::Contains;
using lorafed::PluginError;
using lorafed::PluginRegistry;

namespace {
const std::filesystem::path kBuilt = LORAFED_BUILD_PLUGIN_DIR;
const std::filesystem::path kBroken = LORAFED_TEST_PLUGIN_DIR;
}  // namespace

TEST_CASE("a built-in strategy plugin loads, reports its info and makes objects", "[plugins]") {
  const PluginRegistry registry({kBuilt});
  const auto plugin = registry.strategy("fedavg");
  CHECK(plugin.description.kind == "strategy");
  CHECK(plugin.description.name == "fedavg");
  CHECK(plugin.description.abi_version == lorafed::kAbiVersion);
  CHECK(plugin.description.framework_version == lorafed::kFrameworkVersion);
  CHECK_THAT(plugin.description.torch_version, Contains("1.13"));
  auto strategy = lorafed::keep_library_alive(
      plugin.factory->create_strategy(lorafed::ConfigTable()), plugin.factory);
  REQUIRE(strategy != nullptr);
}

TEST_CASE("an object made by a plugin keeps the library loaded after the registry is gone",
          "[plugins]") {
  std::shared_ptr<lorafed::Strategy> strategy;
  {
    const PluginRegistry registry({kBuilt});
    const auto plugin = registry.strategy("fedavg");
    strategy = lorafed::keep_library_alive(plugin.factory->create_strategy(lorafed::ConfigTable()),
                                           plugin.factory);
  }
  // Calling into the plugin's code after every other handle is gone.
  CHECK(strategy->global_delta().empty());
}

TEST_CASE("a plugin built for another ABI version is refused, naming both versions", "[plugins]") {
  try {
    PluginRegistry::load_file(kBroken / "lorafed-strategy-wrongabi.so");
    FAIL("a wrong-ABI plugin was accepted");
  } catch (const PluginError& error) {
    const std::string message = error.what();
    CHECK_THAT(message, Contains("ABI version " + std::to_string(lorafed::kAbiVersion + 998)));
    CHECK_THAT(message, Contains("has ABI version " + std::to_string(lorafed::kAbiVersion)));
  }
}

TEST_CASE("a missing plugin file is refused with the path", "[plugins]") {
  CHECK_THROWS_WITH(PluginRegistry::load_file(kBroken / "lorafed-strategy-absent.so"),
                    Contains("lorafed-strategy-absent.so") && Contains("does not exist"));
}

TEST_CASE("a shared library without the info symbol is not a plugin", "[plugins]") {
  CHECK_THROWS_WITH(PluginRegistry::load_file(kBroken / "lorafed-strategy-nosymbol.so"),
                    Contains("not a lorafed plugin") && Contains("lorafed_plugin_info"));
}

TEST_CASE("a file that is not a shared library at all is refused", "[plugins]") {
  const auto path = std::filesystem::temp_directory_path() / "lorafed-strategy-garbage.so";
  {
    std::ofstream out(path);
    out << "this is not an ELF file";
  }
  CHECK_THROWS_WITH(PluginRegistry::load_file(path), Contains("cannot be loaded"));
  std::filesystem::remove(path);
}

TEST_CASE("a plugin whose factory throws while loading is reported by name", "[plugins]") {
  CHECK_THROWS_WITH(
      PluginRegistry::load_file(kBroken / "lorafed-strategy-throwing.so"),
      Contains("strategy plugin 'throwing' threw while loading") && Contains("no licence"));
}

TEST_CASE("a plugin in a file named for another plugin is refused", "[plugins]") {
  CHECK_THROWS_WITH(PluginRegistry::load_file(kBroken / "lorafed-strategy-misnamed.so"),
                    Contains("lorafed-strategy-somethingelse.so"));
}

TEST_CASE("asking for a plugin of the wrong kind is refused", "[plugins]") {
  CHECK_THROWS_WITH(PluginRegistry::load_file(kBuilt / "lorafed-transport-zmq.so", "strategy"),
                    Contains("is a transport plugin, not a strategy plugin"));
}

TEST_CASE("an unknown plugin name lists what is available", "[plugins]") {
  const PluginRegistry registry({kBuilt});
  CHECK_THROWS_WITH(registry.strategy("fedprox"), Contains("no strategy plugin named 'fedprox'") &&
                                                      Contains("available: ") &&
                                                      Contains("fedavg"));
}

TEST_CASE("discovery lists loadable plugins and says why others were rejected", "[plugins]") {
  const PluginRegistry registry({kBroken, kBuilt});
  const auto candidates = registry.discover();
  auto find = [&](const std::string& file) {
    for (const auto& candidate : candidates) {
      if (candidate.description.path.filename() == file) return candidate;
    }
    FAIL("discovery did not list " << file);
    return lorafed::PluginCandidate{};
  };
  CHECK(find("lorafed-strategy-fedavg.so").rejection.empty());
  CHECK(find("lorafed-transport-zmq.so").rejection.empty());
  CHECK_THAT(find("lorafed-strategy-wrongabi.so").rejection, Contains("ABI version"));
  CHECK_THAT(find("lorafed-strategy-nosymbol.so").rejection, Contains("not a lorafed plugin"));
}

TEST_CASE("LORAFED_PLUGIN_PATH folders come first in the search path", "[plugins]") {
  ::setenv("LORAFED_PLUGIN_PATH", "/opt/a:/opt/b", 1);
  const auto path = PluginRegistry::default_search_path();
  ::unsetenv("LORAFED_PLUGIN_PATH");
  REQUIRE(path.size() >= 4);
  CHECK(path[0] == "/opt/a");
  CHECK(path[1] == "/opt/b");
  CHECK(path.back() == kBuilt);
}
