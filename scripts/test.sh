#!/bin/sh
# Installs what is needed, builds everything with ASan+UBSan and runs every
# test. eBPF end-to-end tests need root; they skip loudly without it, and
# fail instead when REQUIRE_BPF=1 (as in CI).
set -eu
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
cmake -S . -B build-test -DSANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
cmake --build build-test -j"$(nproc)"
ctest --test-dir build-test --output-on-failure
