#include "src/sdk/atomic_file.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "lorafed/error.hpp"

namespace lorafed {

void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(std::ostream&)>& write) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::filesystem::path temporary = path;
  temporary += ".tmp." + std::to_string(::getpid());
  // The stream's failing write(2) or close(2) leaves its errno: nothing the
  // stream does after a failure makes another system call that could change it.
  auto failure = [&](const std::string& what) {
    const int error = errno;
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw Error("cannot write '" + path.string() + "': " + what + " '" + temporary.string() +
                "' failed: " + (error != 0 ? std::strerror(error) : "unknown error"));
  };
  errno = 0;
  std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
  if (!out) failure("opening");
  write(out);
  out.close();  // flushes; a full disk shows here at the latest
  if (!out) failure("writing");
  std::filesystem::rename(temporary, path);
}

}  // namespace lorafed
