#!/usr/bin/env bash
# Runs every e2eid test: installs missing Debian packages, configures and builds the `dev` preset
# (Debug + ASan/UBSan), runs clang-format and clang-tidy, then all unit and integration tests with
# CTest.
# Exits non-zero on any failure.
#
#   tests/run.sh            everything
#   tests/run.sh -R Store   only tests matching a CTest regex
set -euo pipefail
cd "$(dirname "$0")/.."

# Test peers (real independent implementations) used by the integration tests.
export E2EID_EXTRA_PACKAGES="${E2EID_EXTRA_PACKAGES:-} certbot lego pebble"
bash tests/deps.sh

jobs=$(nproc 2>/dev/null || echo 2)
cmake --preset dev >/dev/null
cmake --build --preset dev -j "$jobs"
bash tests/lint.sh
ctest --preset dev -j "$jobs" "$@"
# The quick start and packages use the release preset: make sure it still compiles (-Werror at -O2
# finds warnings that Debug does not).
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs" --target e2eid
# The ACME benchmark (bench/README.md) as a smoke run when the whole suite runs: Pebble and the
# release e2eid, a few flows each; every flow must issue. No timing is asserted here.
if [[ $# -eq 0 ]]; then
  bench_out="$(mktemp -d)"
  bench/run_acme_bench.sh --flows 20 --concurrency 4 --e2eid build/release/cli/e2eid \
    --results "$bench_out"
  rm -rf "$bench_out"
fi
