#!/usr/bin/env bash
# Training speed benchmark (issue 5): `edgefusion train --debug` (100 optimizer steps) on the demo
# config (resources/configs/demo_scratch.yaml: the bundled demo's shape, 512 tokens per step) with 1
# and 2 threads; prints a Markdown table of training tokens/s (median of the logged intervals after the
# first, and the whole run's tokens / wall second) beside the wall time and CPU seconds.
#
#   bash scripts/bench-train.sh [--build DIR] [--config YAML] [--work DIR]
#
# A benchmark, never part of the CI test command; other load on the machine skews it (printed).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=build/release
CONFIG=resources/configs/demo_scratch.yaml
WORK=${TMPDIR:-/tmp}/edgefusion-trainbench
while (($#)); do
  case "$1" in
    --build) BUILD=$2; shift ;;
    --config) CONFIG=$2; shift ;;
    --work) WORK=$2; shift ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-train: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
CLI=$BUILD/app/edgefusion
if [ ! -x "$CLI" ]; then
  if [ "$BUILD" = build/release ] && [ ! -f build/release/CMakeCache.txt ]; then cmake --preset release >/dev/null; fi
  cmake --build "$BUILD" --target edgefusion >&2
fi
mkdir -p "$WORK"
echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') ($(nproc) cores); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Config: $CONFIG, --debug (100 steps)"
echo
echo "| threads | tokens/s (median of intervals) | tokens/s (whole run) | wall s | CPU s |"
echo "|---:|---:|---:|---:|---:|"
for t in 1 2; do
  out=$WORK/t$t
  rm -rf "$out"
  /usr/bin/time -f "%e %U %S" -o "$WORK/time-$t.txt" "$CLI" train --config "$CONFIG" --output-dir "$out" --debug \
    --skip-quantization -t "$t" >"$WORK/log-$t.txt" 2>&1 || { echo "bench-train: run failed, see $WORK/log-$t.txt" >&2; exit 1; }
  read -r wall user sys <"$WORK/time-$t.txt"
  /usr/bin/python3 - "$out/train_log.jsonl" "$t" "$wall" "$user" "$sys" "$WORK/log-$t.txt" <<'PY'
import json, re, statistics, sys
path, t, wall, user, sys_s = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
per_step = int(re.search(r"= (\d+) tokens per step", open(sys.argv[6]).read()).group(1))
rows = [json.loads(l) for l in open(path) if l.strip()]
rates = [r["tokens_per_s"] for r in rows[1:]] or [rows[-1]["tokens_per_s"]]
steps = rows[-1]["step"]
tokens = steps * per_step
print(f"| {t} | {statistics.median(rates):.0f} | {tokens / wall:.0f} | {wall:.1f} | {user + sys_s:.1f} |")
PY
done
echo
echo "Whole-run tokens/s includes tokenizer training, data preparation and checkpoint writes."
