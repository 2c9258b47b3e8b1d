#include "src/plugin_registry.hpp"

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>

#include <cstdlib>
#include <set>
#include <sstream>

#include "lorafed/error.hpp"
#include "lorafed/version.hpp"
#include "src/elf_check.hpp"

namespace lorafed {
namespace {

constexpr const char* kFilePrefix = "lorafed-";
constexpr const char* kFileSuffix = ".so";

std::string file_name(const std::string& kind, const std::string& name) {
  return kFilePrefix + kind + "-" + name + kFileSuffix;
}

std::string text_or_empty(const char* text) {
  return text ? std::string(text) : std::string();
}

template <class Factory>
LoadedPlugin<Factory> narrow(LoadedPlugin<PluginFactory> plugin) {
  // The export macro ties the info record's kind to the factory's base
  // class at compile time, so the kind check in load_file makes this safe.
  auto factory = std::static_pointer_cast<const Factory>(plugin.factory);
  return LoadedPlugin<Factory>{std::move(plugin.description), std::move(factory)};
}

}  // namespace

const char* plugin_kind_name(PluginKind kind) {
  switch (kind) {
    case PluginKind::kStrategy:
      return "strategy";
    case PluginKind::kModel:
      return "model";
    case PluginKind::kTransport:
      return "transport";
  }
  return "unknown";
}

std::vector<std::filesystem::path> PluginRegistry::default_search_path() {
  std::vector<std::filesystem::path> path;
  if (const char* env = std::getenv("LORAFED_PLUGIN_PATH")) {
    std::stringstream entries(env);
    for (std::string entry; std::getline(entries, entry, ':');) {
      if (!entry.empty()) path.emplace_back(entry);
    }
  }
  // An installed lorafed searches the prefix it is installed in (found from
  // its own path, so `cmake --install --prefix` anywhere works); one run from
  // the build tree searches the configured prefix, then the build tree.
  boost::system::error_code error;
  const std::filesystem::path program = boost::dll::program_location(error).string();
  const std::filesystem::path installed =
      program.parent_path().parent_path() / LORAFED_INSTALL_PLUGIN_RELATIVE_DIR;
  std::error_code exists_error;
  if (!error && program.parent_path().filename() == LORAFED_INSTALL_BIN_RELATIVE_DIR &&
      std::filesystem::is_directory(installed, exists_error)) {
    path.push_back(installed);
  } else {
    path.emplace_back(LORAFED_INSTALL_PLUGIN_DIR);
    path.emplace_back(LORAFED_BUILD_PLUGIN_DIR);
  }
  return path;
}

PluginRegistry::PluginRegistry(std::vector<std::filesystem::path> search_path)
    : search_path_(std::move(search_path)) {}

LoadedPlugin<PluginFactory> PluginRegistry::load_file(const std::filesystem::path& path,
                                                      const std::string& kind) {
  const std::string where = "plugin '" + path.string() + "'";
  if (!std::filesystem::exists(path)) throw PluginError(where + " does not exist");
  // Before dlopen: a library cut short would be mapped anyway and fault later.
  if (const auto defect = elf_file_defect(path))
    throw PluginError(where + " cannot be loaded: " + *defect);
  auto library = std::make_shared<boost::dll::shared_library>();
  try {
    library->load(boost::dll::fs::path(path.string()),
                  boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& error) {
    throw PluginError(where + " cannot be loaded: " + error.what());
  }
  if (!library->has(kPluginInfoSymbol)) {
    throw PluginError(where + " is not a lorafed plugin: it has no '" +
                      std::string(kPluginInfoSymbol) +
                      "' symbol (export one with LORAFED_STRATEGY_PLUGIN and friends)");
  }
  const PluginInfo& info = library->get_alias<const PluginInfo>(kPluginInfoSymbol);
  PluginDescription description;
  description.path = path;
  description.abi_version = info.abi_version;
  if (info.abi_version != kAbiVersion) {
    throw PluginError(where + " was built for lorafed ABI version " +
                      std::to_string(info.abi_version) + ", but this lorafed " + kFrameworkVersion +
                      " has ABI version " + std::to_string(kAbiVersion) +
                      ": rebuild the plugin against this SDK");
  }
  // Only now that the ABI matches is the rest of the record's layout trusted.
  description.kind = plugin_kind_name(info.kind);
  description.name = text_or_empty(info.name);
  description.version = text_or_empty(info.version);
  description.framework_version = text_or_empty(info.framework_version);
  description.compiler = text_or_empty(info.compiler);
  description.torch_version = text_or_empty(info.torch_version);
  if (description.kind == std::string("unknown"))
    throw PluginError(where + " declares an unknown plugin kind");
  if (!kind.empty() && description.kind != kind) {
    throw PluginError(where + " is a " + description.kind + " plugin, not a " + kind + " plugin");
  }
  const std::string expected_file = file_name(description.kind, description.name);
  if (path.filename() != expected_file) {
    throw PluginError(where + " calls itself " + description.kind + " '" + description.name +
                      "', so its file must be named " + expected_file);
  }
  if (!library->has(kPluginFactorySymbol)) {
    throw PluginError(where + " has an info record but no '" + std::string(kPluginFactorySymbol) +
                      "' symbol");
  }
  PluginFactory* factory = nullptr;
  try {
    factory = library->get_alias<PluginFactory*()>(kPluginFactorySymbol)();
  } catch (const std::exception& error) {
    throw PluginError(description.kind + " plugin '" + description.name +
                      "' threw while loading: " + error.what());
  } catch (...) {
    throw PluginError(description.kind + " plugin '" + description.name + "' threw while loading");
  }
  if (factory == nullptr) throw PluginError(where + " returned no factory");
  // The factory is a static object inside the library: share the library's lifetime.
  std::shared_ptr<const PluginFactory> shared(library, factory);
  return LoadedPlugin<PluginFactory>{std::move(description), std::move(shared)};
}

std::filesystem::path PluginRegistry::locate(const std::string& kind,
                                             const std::string& name) const {
  const std::string wanted = file_name(kind, name);
  for (const auto& folder : search_path_) {
    const auto candidate = folder / wanted;
    if (std::filesystem::exists(candidate)) return candidate;
  }
  std::string known;
  for (const PluginCandidate& candidate : discover()) {
    if (candidate.rejection.empty() && candidate.description.kind == kind) {
      known += (known.empty() ? "" : ", ") + candidate.description.name;
    }
  }
  std::string folders;
  for (const auto& folder : search_path_) folders += (folders.empty() ? "" : ":") + folder.string();
  throw PluginError("no " + kind + " plugin named '" + name + "' (file " + wanted + ") in " +
                    folders + (known.empty() ? "" : "; available: " + known) +
                    ". Set LORAFED_PLUGIN_PATH to the folder of an out-of-tree plugin.");
}

LoadedPlugin<StrategyFactory> PluginRegistry::strategy(const std::string& name) const {
  return narrow<StrategyFactory>(load_file(locate("strategy", name), "strategy"));
}
LoadedPlugin<ModelFactory> PluginRegistry::model(const std::string& name) const {
  return narrow<ModelFactory>(load_file(locate("model", name), "model"));
}
LoadedPlugin<TransportFactory> PluginRegistry::transport(const std::string& name) const {
  return narrow<TransportFactory>(load_file(locate("transport", name), "transport"));
}

std::vector<PluginCandidate> PluginRegistry::discover() const {
  std::vector<PluginCandidate> candidates;
  std::set<std::string> seen;  // file names: the first folder wins
  for (const auto& folder : search_path_) {
    std::error_code error;
    if (!std::filesystem::is_directory(folder, error)) continue;
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(folder, error)) {
      const std::string file = entry.path().filename().string();
      if (file.starts_with(kFilePrefix) && file.ends_with(kFileSuffix))
        files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      PluginCandidate candidate;
      candidate.description.path = file;
      if (!seen.insert(file.filename().string()).second) {
        candidate.rejection = "shadowed by an earlier folder in the search path";
      } else {
        try {
          candidate.description = load_file(file).description;
        } catch (const PluginError& rejection) {
          candidate.rejection = rejection.what();
        }
      }
      candidates.push_back(std::move(candidate));
    }
  }
  return candidates;
}

}  // namespace lorafed
