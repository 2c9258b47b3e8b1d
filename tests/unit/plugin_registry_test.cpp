#include <catch2/catch.hpp>

#include <elf.h>

#include <cstddef>
#include <fstream>

#include "lorafed/error.hpp"
#include "lorafed/version.hpp"
#include "src/plugin_registry.hpp"
#include "truncated_plugin.hpp"

using Catch::Matchers::Contains;
using lorafed::PluginError;
using lorafed::PluginRegistry;

namespace {
const std::filesystem::path kBuilt = LORAFED_BUILD_PLUGIN_DIR;
const std::filesystem::path kBroken = LORAFED_TEST_PLUGIN_DIR;
const std::filesystem::path kFedAvg = kBuilt / "lorafed-strategy-fedavg.so";

// A fresh folder holding a copy of the built FedAvg plugin cut to `size`
// bytes, under the plugin's own file name.
std::filesystem::path fedavg_copy(const std::string& folder_name, std::uint64_t size) {
  const auto folder = std::filesystem::temp_directory_path() / folder_name;
  std::filesystem::remove_all(folder);
  return lorafed::test::truncated_copy(kFedAvg, folder, size);
}

// Overwrites `value` at byte `offset` of `path`.
template <class T>
void patch(const std::filesystem::path& path, std::int64_t offset, T value) {
  std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
  file.seekp(offset);
  file.write(reinterpret_cast<const char*>(&value), sizeof(T));
  REQUIRE(file.good());
}
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

TEST_CASE("a plugin file cut inside its loadable segments is refused before it is mapped",
          "[plugins]") {
  // dlopen maps the missing bytes anyway; the first touch of them was a
  // SIGBUS, so without the check this test process dies here.
  const std::uint64_t cut = lorafed::test::loadable_end(kFedAvg) / 2;
  const auto copy = fedavg_copy("lorafed-truncated-segment", cut);
  CHECK_THROWS_WITH(
      PluginRegistry::load_file(copy),
      Contains("plugin '" + copy.string() + "' cannot be loaded: truncated: segment") &&
          Contains("(loadable) ends at byte") &&
          Contains("of a " + std::to_string(cut) + "-byte file"));
  const PluginRegistry registry({copy.parent_path()});
  const auto candidates = registry.discover();
  REQUIRE(candidates.size() == 1);
  CHECK_THAT(candidates[0].rejection, Contains("truncated: segment"));
  CHECK_THROWS_WITH(registry.strategy("fedavg"), Contains("truncated: segment"));
  std::filesystem::remove_all(copy.parent_path());
}

TEST_CASE("a plugin file cut to half its size is refused", "[plugins]") {
  // All its loadable segments may fit in the first half (debug information
  // makes up the rest); its section header table, at the end, does not.
  const std::uint64_t size = std::filesystem::file_size(kFedAvg);
  const auto copy = fedavg_copy("lorafed-truncated-plugin", size / 2);
  CHECK_THROWS_WITH(PluginRegistry::load_file(copy),
                    Contains(copy.string()) && Contains("cannot be loaded: truncated: ") &&
                        Contains("of a " + std::to_string(size / 2) + "-byte file"));
  std::filesystem::remove_all(copy.parent_path());
}

TEST_CASE("a plugin file whose ELF headers point past its end is refused", "[plugins]") {
  const std::uint64_t size = std::filesystem::file_size(kFedAvg);
  auto copy = fedavg_copy("lorafed-short-header", 40);
  CHECK_THROWS_WITH(PluginRegistry::load_file(copy),
                    Contains("truncated: the ELF header ends at byte 64 of a 40-byte file"));
  copy = fedavg_copy("lorafed-far-program-headers", size);
  patch<std::uint64_t>(copy, offsetof(Elf64_Ehdr, e_phoff), size);
  CHECK_THROWS_WITH(PluginRegistry::load_file(copy),
                    Contains("truncated: the program header table"));
  copy = fedavg_copy("lorafed-far-section-headers", size);
  patch<std::uint64_t>(copy, offsetof(Elf64_Ehdr, e_shoff), size - 8);
  CHECK_THROWS_WITH(PluginRegistry::load_file(copy),
                    Contains("truncated: the section header table"));
  copy = fedavg_copy("lorafed-32-bit", size);
  patch<unsigned char>(copy, EI_CLASS, ELFCLASS32);
  CHECK_THROWS_WITH(PluginRegistry::load_file(copy), Contains("not a 64-bit ELF file"));
  for (const char* folder : {"lorafed-short-header", "lorafed-far-program-headers",
                             "lorafed-far-section-headers", "lorafed-32-bit"}) {
    std::filesystem::remove_all(std::filesystem::temp_directory_path() / folder);
  }
}

TEST_CASE("an intact copy of a plugin passes the ELF checks and loads", "[plugins]") {
  const auto copy = fedavg_copy("lorafed-intact-plugin", std::filesystem::file_size(kFedAvg));
  CHECK(PluginRegistry::load_file(copy).description.name == "fedavg");
  std::filesystem::remove_all(copy.parent_path());
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
  CHECK_THROWS_WITH(registry.strategy("nonexistent"),
                    Contains("no strategy plugin named 'nonexistent'") && Contains("available: ") &&
                        Contains("fedprox"));
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
