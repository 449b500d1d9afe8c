#!/usr/bin/env bash
# Sets everything up, builds (release preset) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -d ../shared ]; then
  echo "run-tests: ../shared (the shared test data) is missing beside the repository" >&2
  exit 1
fi
cmake --preset release
cmake --build --preset release
ctest --preset release --label-exclude bench --timeout 600
