#include "src/sdk/atomic_file.hpp"

#include <unistd.h>

#include <fstream>

#include "lorafed/error.hpp"

namespace lorafed {

void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(std::ostream&)>& write) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::filesystem::path temporary = path;
  temporary += ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) throw Error("cannot write '" + temporary.string() + "'");
    write(out);
    out.flush();
    if (!out) {
      std::filesystem::remove(temporary);
      throw Error("writing '" + temporary.string() + "' failed (disk full?)");
    }
  }
  std::filesystem::rename(temporary, path);
}

}  // namespace lorafed
