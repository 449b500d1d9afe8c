#!/usr/bin/env bash
# Sets everything up, builds and opens the workbench on the bundled default model. With no
# display it runs the same job headless through the CLI and prints the result.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release
BIN=build/release/app
MODEL=build/release/resources/default-edgefusion.gguf
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  exec "$BIN/edgefusion-workbench" "$@"
fi
echo "run-workbench: no display; running the workbench's job headless through the CLI"
"$BIN/edgefusion" inspect "${1:-$MODEL}" --stats
if [ -z "${1:-}" ]; then  # the bundled demo: its routing and a short generation
  "$BIN/edgefusion" analyze-router --checkpoint "$MODEL"
  "$BIN/edgefusion" infer --checkpoint "$MODEL" --prompt "ROMEO:" -n 48 --temp 0.8 --seed 1 --profile
fi
