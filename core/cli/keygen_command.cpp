#include "cli/keygen_command.hpp"

#include <sys/stat.h>

#include <zmq.h>

#include <array>
#include <filesystem>
#include <fstream>

#include "lorafed/error.hpp"

namespace lorafed::cli {
namespace {

void write_new(const std::filesystem::path& path, const std::string& text, mode_t mode) {
  // O_EXCL semantics: never replace a key someone may already have handed out.
  if (std::filesystem::exists(path)) {
    throw Error("'" + path.string() + "' exists; remove it or choose another name");
  }
  const mode_t old_mask = ::umask(0777 & ~mode);
  std::ofstream file(path, std::ios::out | std::ios::trunc);
  ::umask(old_mask);
  if (!file) throw Error("cannot write '" + path.string() + "'");
  file << text;
  file.close();
  if (!file) throw Error("writing '" + path.string() + "' failed");
}

}  // namespace

int keygen(const std::string& name, std::ostream& out) {
  if (zmq_has("curve") == 0) {
    throw Error("this libzmq was built without CURVE support");
  }
  std::array<char, 41> public_key{};
  std::array<char, 41> secret_key{};
  if (zmq_curve_keypair(public_key.data(), secret_key.data()) != 0) {
    throw Error(std::string("zmq_curve_keypair failed: ") + zmq_strerror(zmq_errno()));
  }
  const std::filesystem::path stem(name);
  if (stem.has_parent_path()) std::filesystem::create_directories(stem.parent_path());
  const std::filesystem::path secret_path = stem.string() + ".key";
  const std::filesystem::path public_path = stem.string() + ".pub";
  const std::string public_line = "public = \"" + std::string(public_key.data()) + "\"\n";
  write_new(secret_path,
            "# lorafed CURVE key pair (zmq transport). Secret: keep it on this machine.\n" +
                public_line + "secret = \"" + std::string(secret_key.data()) + "\"\n",
            0600);
  write_new(public_path,
            "# lorafed CURVE public key: give this file to the other side.\n" + public_line, 0644);
  out << "wrote " << secret_path.string() << " (secret, mode 600) and " << public_path.string()
      << "\npublic key " << public_key.data() << "\n";
  return 0;
}

}  // namespace lorafed::cli
