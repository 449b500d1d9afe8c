#!/usr/bin/env bash
# Quantization benchmarks (issue 4, "Quality" and "Speed"); prints Markdown tables.
#
#   bash scripts/bench-quant.sh [--build DIR] [--work DIR] [--quality-only | --speed-only]
#                               [--speed-model 1b|small] [--threads T] [--calib-tokens N]
#
# Quality: tests/bench/bench_quant_quality (synthetic heavy-tailed matrices and stories260K: EF with
#   outliers vs EF plain RTN vs llama.cpp's own quantizer; GPTQ vs RTN at 3 bits; RMSE, KL, bits).
# Speed: a seeded synth llama, then wall time and peak RSS (/usr/bin/time -v) of
#   `edgefusion quantize` (rtn and imatrix, to q4_K and to EF 4-bit) and of llama.cpp's
#   llama_model_quantize (node-llama-cpp's libllama, via bench_quant_quality --llama-quantize) for
#   q4_K ("pure": every 2-D weight q4_K, token_embd/output kept f16 — what our q4_K run does), all on
#   T threads (default 2).
#   --speed-model 1b (default): dim 2048, 18 layers, ffn 5632, vocab 32000, f16: 1.06 B parameters,
#   2.1 GB. --speed-model small: dim 1024, 8 layers, ffn 2816, vocab 32000 (0.17 B) — a try-out only.
# Heavy (minutes, GBs in --work): a benchmark, never part of the CI test command. Both sides are
# measured back to back; other load on the machine skews them (the load average is printed).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=build/release
WORK=${TMPDIR:-/tmp}/edgefusion-qbench
QUALITY=1 SPEED=1 SPEED_MODEL=1b THREADS=2 CALIB=128
while (($#)); do
  case "$1" in
    --build) BUILD=$2; shift ;;
    --work) WORK=$2; shift ;;
    --quality-only) SPEED=0 ;;
    --speed-only) QUALITY=0 ;;
    --speed-model) SPEED_MODEL=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --calib-tokens) CALIB=$2; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-quant: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

CLI=$BUILD/app/edgefusion
BENCH=$BUILD/tests/bench_quant_quality
if [ ! -x "$CLI" ] || [ ! -x "$BENCH" ]; then
  echo "bench-quant: building edgefusion and bench_quant_quality in $BUILD" >&2
  if [ "$BUILD" = build/release ] && [ ! -f build/release/CMakeCache.txt ]; then cmake --preset release >/dev/null; fi
  cmake --build "$BUILD" --target edgefusion bench_quant_quality >&2
fi
mkdir -p "$WORK"
echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') ($(nproc) cores), $(uname -srm)"
echo "Load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

if ((QUALITY)); then
  "$BENCH" --work "$WORK" -t "$THREADS"
  echo "Load average after the quality benchmark: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
fi

((SPEED)) || exit 0
case "$SPEED_MODEL" in
  1b) SYNTH=(--dim 2048 --layers 18 --ffn 5632 --vocab 32000) ;;
  small) SYNTH=(--dim 1024 --layers 8 --ffn 2816 --vocab 32000) ;;
  *) echo "bench-quant: --speed-model 1b|small" >&2; exit 2 ;;
esac
M=$WORK/llama-$SPEED_MODEL-f16.gguf
if [ ! -s "$M" ]; then
  echo "bench-quant: synth $M" >&2
  "$CLI" synth --arch llama "${SYNTH[@]}" --type f16 --seed 1 -o "$M" >/dev/null
fi
PARAMS=$("$CLI" inspect "$M" 2>/dev/null | grep -m1 -i 'param' || true)

# name | command...; time -v's wall clock and max RSS go to $WORK/time-<name>.txt
run() {
  local name=$1; shift
  echo "bench-quant: $name" >&2
  if /usr/bin/time -v -o "$WORK/time-$name.txt" "$@" >"$WORK/out-$name.txt" 2>&1; then st=ok; else st="FAILED (see $WORK/out-$name.txt)"; fi
  local wall rss cpu
  wall=$(grep 'Elapsed (wall clock)' "$WORK/time-$name.txt" | sed 's/.*): //')
  cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.1f", s}' "$WORK/time-$name.txt")
  rss=$(grep 'Maximum resident set size' "$WORK/time-$name.txt" | sed 's/.*: //')
  ROWS+=("| $name | $wall | $cpu | $(awk -v k="$rss" 'BEGIN{printf "%.0f", k/1024}') | $st |")
  CMDS+=("- $name: \`$*\`")
}
ROWS=() CMDS=()
OUT=$WORK/q.gguf
run "edgefusion rtn q4_K" "$CLI" quantize "$M" -o "$OUT" --format q4_K -t "$THREADS"
run "edgefusion imatrix q4_K" "$CLI" quantize "$M" -o "$OUT" --format q4_K --method imatrix --calib-tokens "$CALIB" --calib-ctx "$CALIB" -t "$THREADS"
run "edgefusion rtn ef4 B128 p0.5%" "$CLI" quantize "$M" -o "$OUT" --format ef --bits 4 -t "$THREADS"
run "edgefusion imatrix ef4 B128 p0.5%" "$CLI" quantize "$M" -o "$OUT" --format ef --bits 4 --method imatrix --calib-tokens "$CALIB" --calib-ctx "$CALIB" -t "$THREADS"
run "llama_model_quantize q4_K (pure)" "$BENCH" --llama-quantize "$M" "$OUT" q4_K "$THREADS"
rm -f "$OUT"

echo "## Quantization speed ($SPEED_MODEL synth llama: ${SYNTH[*]}, f16; $THREADS threads)"
echo
[ -n "$PARAMS" ] && echo "Model: $PARAMS" && echo
echo "| run | wall (h:mm:ss) | CPU s (user+sys) | peak RSS MiB | status |"
echo "| --- | ---: | ---: | ---: | --- |"
for r in "${ROWS[@]}"; do echo "$r"; done
echo
for c in "${CMDS[@]}"; do echo "$c"; done
echo
echo "CPU seconds are less sensitive than wall time to other load on a shared machine."
echo "imatrix runs include calibration ($CALIB tokens, window $CALIB) and the model load; all runs include the load and the write."
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
