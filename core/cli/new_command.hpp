#pragma once

#include <filesystem>
#include <ostream>
#include <string>

namespace lorafed::cli {

struct NewOptions {
  std::string kind;  // strategy, model or transport
  std::string name;
  std::string directory;  // default: the name
};

// `lorafed new KIND NAME [DIR]`: writes a plugin project that builds against
// an installed lorafed (CMakeLists.txt, one source file with a working
// default, a configuration that runs it, a README with the commands).
// Refuses a non-empty DIR. Throws lorafed::ConfigError on a bad kind or name.
int new_plugin(const NewOptions& options, std::ostream& out);

}  // namespace lorafed::cli
