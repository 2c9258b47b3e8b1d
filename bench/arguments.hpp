#pragma once

// The benchmarks' command lines: options come in pairs (--name value).
// `--help` or `-h` anywhere prints the usage and exits 0, before any
// benchmark starts; an option without its value prints it and exits 2.
#include <cstdio>
#include <cstdlib>
#include <string>

namespace lorafed::bench {

inline void check_arguments(int argc, char** argv, const char* usage) {
  for (int i = 1; i < argc; ++i) {
    const std::string argument = argv[i];
    if (argument == "--help" || argument == "-h") {
      std::printf("usage: %s\n", usage);
      std::exit(0);
    }
  }
  if (argc % 2 == 0) {
    std::fprintf(stderr, "%s needs a value\nusage: %s\n", argv[argc - 1], usage);
    std::exit(2);
  }
}

}  // namespace lorafed::bench
