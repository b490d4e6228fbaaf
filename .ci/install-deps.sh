#!/usr/bin/env bash
# Installs everything coexec needs to build, test and benchmark on Debian 12.
# Run as root (CI and fresh machines are). Idempotent.
# Boost: Debian 12's libboost-dev is 1.74; coexec::boost_asio and the sample
# server need 1.81 (libboost1.81-dev, which replaces libboost1.74-dev).
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: run as root (apt-get install)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    g++ make cmake ninja-build pkg-config ca-certificates \
    liburing-dev libseccomp-dev libasio-dev libcereal-dev catch2 libbenchmark-dev \
    libzstd-dev zlib1g-dev libopenmpi-dev openmpi-bin \
    python3 python3-mpi4py iproute2 wrk clang-16 clang-format-16 libfuzzer-16-dev libclang-rt-16-dev \
    libboost1.81-dev libboost-url1.81-dev libcli11-dev >/dev/null
echo "install-deps: done"
