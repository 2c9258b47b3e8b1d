#include "cli/new_command.hpp"

#include <fstream>
#include <regex>

#include "cli/plugin_templates.hpp"
#include "lorafed/error.hpp"

namespace lorafed::cli {
namespace {

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at)) {
    text.replace(at, from.size(), to);
    at += to.size();
  }
  return text;
}

void write(const std::filesystem::path& path, const std::string& text) {
  std::ofstream file(path);
  file << text;
  if (!file) throw Error("cannot write " + path.string());
}

}  // namespace

int new_plugin(const NewOptions& options, std::ostream& out) {
  std::string_view source;
  if (options.kind == "strategy") {
    source = templates::strategy_source();
  } else if (options.kind == "model") {
    source = templates::model_source();
  } else if (options.kind == "transport") {
    source = templates::transport_source();
  } else {
    throw ConfigError("lorafed new: KIND is strategy, model or transport, not '" + options.kind +
                      "'");
  }
  if (!std::regex_match(options.name, std::regex("[a-z][a-z0-9_]*"))) {
    throw ConfigError(
        "lorafed new: NAME must be lower-case letters, digits and _, starting with "
        "a letter (it becomes lorafed-" +
        options.kind + "-NAME.so), not '" + options.name + "'");
  }
  const std::filesystem::path directory = options.directory.empty()
                                              ? std::filesystem::path(options.name)
                                              : std::filesystem::path(options.directory);
  if (std::filesystem::exists(directory) && !std::filesystem::is_empty(directory)) {
    throw ConfigError("lorafed new: " + directory.string() +
                      " exists and is not empty; choose another DIR");
  }
  std::filesystem::create_directories(directory);

  auto fill = [&](std::string_view text) {
    std::string filled = replace_all(std::string(text), "@NAME@", options.name);
    filled = replace_all(filled, "@KIND@", options.kind);
    filled =
        replace_all(filled, "@STRATEGY@", options.kind == "strategy" ? options.name : "fedavg");
    filled = replace_all(filled, "@MODEL@", options.kind == "model" ? options.name : "mlp");
    return replace_all(filled, "@TRANSPORT@",
                       options.kind == "transport" ? options.name : "inproc");
  };
  write(directory / "CMakeLists.txt", fill(templates::cmake_lists()));
  write(directory / (options.name + ".cpp"), fill(source));
  write(directory / "README.md", fill(templates::readme()));
  write(directory / (options.name + ".toml"), fill(templates::federation_config()));
  out << "wrote a " << options.kind << " plugin project in " << directory.string()
      << "; see its README.md to build, list and run it\n";
  return 0;
}

}  // namespace lorafed::cli
