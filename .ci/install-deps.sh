#!/usr/bin/env bash
# Installs everything coexec needs to build, test and benchmark on Debian 12.
# Run as root (CI and fresh machines are). Idempotent.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: run as root (apt-get install)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    g++ make cmake ninja-build pkg-config ca-certificates \
    liburing-dev libasio-dev libcereal-dev catch2 libbenchmark-dev \
    libzstd-dev zlib1g-dev libopenmpi-dev openmpi-bin \
    python3 python3-mpi4py iproute2 wrk clang-16 libfuzzer-16-dev clang-format-16 >/dev/null
echo "install-deps: done"
