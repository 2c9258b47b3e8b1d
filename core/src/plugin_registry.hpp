#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "lorafed/plugin.hpp"

namespace lorafed {

// A plugin's info record, copied out of the library.
struct PluginDescription {
  std::filesystem::path path;
  std::uint32_t abi_version = 0;
  std::string kind;  // "strategy", "model", "transport"
  std::string name;
  std::string version;
  std::string framework_version;
  std::string compiler;
  std::string torch_version;
};

// A candidate file found during discovery, loadable or not (`lorafed plugins`).
struct PluginCandidate {
  PluginDescription description;  // path always set; the rest when the info was readable
  std::string rejection;          // empty when the plugin can be used
};

// A loaded plugin: its factory, valid while this (or anything made from it) lives.
template <class Factory>
struct LoadedPlugin {
  PluginDescription description;
  std::shared_ptr<const Factory> factory;  // shares ownership of the library
};

// Finds, checks and loads plugins (docs/architecture.md, "Plugins").
//
// Search order: each folder of LORAFED_PLUGIN_PATH (colon separated), then
// the install prefix's lib/lorafed/plugins, then the build tree's plugins
// folder. A plugin is the file lorafed-<kind>-<name>.so; the first folder
// that has it wins. Loading reads the info record first and refuses a
// library that is not a plugin, is of another kind or name than its file
// says, or was built against another ABI version.
class PluginRegistry {
 public:
  static std::vector<std::filesystem::path> default_search_path();

  explicit PluginRegistry(std::vector<std::filesystem::path> search_path = default_search_path());

  const std::vector<std::filesystem::path>& search_path() const { return search_path_; }

  // Every lorafed-*.so in the search path, with why any cannot be used.
  std::vector<PluginCandidate> discover() const;

  LoadedPlugin<StrategyFactory> strategy(const std::string& name) const;
  LoadedPlugin<ModelFactory> model(const std::string& name) const;
  LoadedPlugin<TransportFactory> transport(const std::string& name) const;

  // Loads one file, checking it is a plugin of `kind` (any kind when empty).
  static LoadedPlugin<PluginFactory> load_file(const std::filesystem::path& path,
                                               const std::string& kind = "");

 private:
  std::filesystem::path locate(const std::string& kind, const std::string& name) const;
  std::vector<std::filesystem::path> search_path_;
};

// Wraps an object a plugin made so that it keeps the plugin's library loaded
// until the object is destroyed (Boost.DLL tutorial 8).
template <class T>
std::shared_ptr<T> keep_library_alive(std::unique_ptr<T> object,
                                      std::shared_ptr<const void> library) {
  struct Holder {
    std::shared_ptr<const void> library;  // destroyed last
    std::unique_ptr<T> object;
  };
  auto holder = std::make_shared<Holder>(Holder{std::move(library), std::move(object)});
  T* raw = holder->object.get();
  return std::shared_ptr<T>(std::move(holder), raw);
}

const char* plugin_kind_name(PluginKind kind);

}  // namespace lorafed
