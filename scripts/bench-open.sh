#!/usr/bin/env bash
# Benchmark: how long `edgefusion inspect` takes to open a ~1 GiB checkpoint in each format, and the
# peak resident memory of that process. Prints a table. Usage: bash scripts/bench-open.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/release}
CLI=$BUILD/app/edgefusion
[ -x "$CLI" ] || { echo "bench-open: build first ($CLI missing)" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# ~1.1 GB of F16 weights: llama, dim 2048, 12 layers, vocab 32000.
"$CLI" synth --arch llama --dim 2048 --layers 12 --vocab 32000 --type f16 --seed 1 -o "$WORK/m.gguf" >/dev/null
"$CLI" convert "$WORK/m.gguf" "$WORK/m.safetensors" >/dev/null
"$CLI" convert "$WORK/m.gguf" "$WORK/m.h5" >/dev/null

printf '%-14s %10s %12s %14s\n' format "size MiB" "open s" "peak RSS MiB"
for f in m.gguf m.safetensors m.h5; do
  size=$(( $(stat -c %s "$WORK/$f") >> 20 ))
  # /usr/bin/time gives wall time and max RSS of the inspect process (open + validate + summary).
  out=$( { /usr/bin/time -f '%e %M' "$CLI" inspect "$WORK/$f" >/dev/null; } 2>&1 | tail -1 )
  read -r secs kib <<<"$out"
  printf '%-14s %10d %12s %14d\n' "${f#m.}" "$size" "$secs" "$((kib / 1024))"
done
