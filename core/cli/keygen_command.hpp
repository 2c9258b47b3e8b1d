#pragma once

#include <ostream>
#include <string>

namespace lorafed::cli {

// `lorafed keygen NAME`: a new CURVE key pair for the zmq transport, written
// as NAME.key (public and secret key, mode 600) and NAME.pub (public key
// only, to hand to the other side). Both are small TOML files with Z85 keys
// (docs/deployment.md §Keys). Refuses to overwrite an existing file.
int keygen(const std::string& name, std::ostream& out);

}  // namespace lorafed::cli
