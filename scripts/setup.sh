#!/usr/bin/env bash
# Installs the Debian 12 packages lorafed needs, only those missing.
# Idempotent: a second run installs nothing. Run as root (or with sudo).
# docs/dependencies.md says why each package is here.
#
#   scripts/setup.sh [mpi] [test] [fuzz]
#     (nothing)  what building and running lorafed needs (scripts/quickstart.sh)
#     mpi        also Open MPI, for the mpi transport (mpirun across machines)
#     test       also what only tests use: Debian's Python torch, with which
#                tests/python checks the PEFT export, Python's sentencepiece,
#                with which it checks the SentencePiece tokenizer's ids, and
#                Open MPI, whose transport the tests run under mpirun
#                (scripts/test.sh)
#     fuzz       also Clang and libFuzzer (scripts/fuzz.sh)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libtorch-dev libopenblas0-openmp
  libzmq3-dev cppzmq-dev
  libflatbuffers-dev flatbuffers-compiler
  libboost-dev libboost-filesystem-dev
  catch2 libtomlplusplus-dev libcli11-dev libspdlog-dev nlohmann-json3-dev
  zlib1g-dev libcpp-httplib-dev
  libpcre2-dev libunistring-dev
  gnuplot-nox fonts-liberation
  dataset-fashion-mnist
)
for stage in "$@"; do
  case "$stage" in
    mpi) packages+=(libopenmpi-dev openmpi-bin) ;;
    test) packages+=(python3-torch python3-numpy python3-sentencepiece libopenmpi-dev openmpi-bin) ;;
    fuzz) packages+=(clang-14 libclang-rt-14-dev) ;;
    *)
      echo "setup: unknown stage '$stage' (mpi, test, fuzz)" >&2
      exit 2
      ;;
  esac
done

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
