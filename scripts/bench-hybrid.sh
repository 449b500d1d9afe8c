#!/usr/bin/env bash
# Routing benchmark (issue 5): the bundled demo hybrid beside stories260K hybridized at run time, in
# the numbers the paper reports. For each model:
#   - perplexity of the hard-routed model on its training run's held-out tokens (evaluate --checkpoint,
#     256-token windows); for the hybrid also its dense teacher's perplexity on the very same tokens,
#   - ssm_frac, mean gate entropy (bits) and GFLOPs/token hard-routed vs the dense twin (every layer on
#     attention, same tensors), at context_length / 2 (analyze-router),
#   - parameters.
# The hybrid is made here from ../shared (never committed): resources/configs/hybridize_stories260k.yaml,
# base frozen, SSM branches and gates distilled to the dense model's logits.
#
#   bash scripts/bench-hybrid.sh [--build DIR] [--work DIR] [--steps N] [--reuse]
#
# --steps overrides the config's training steps; --reuse keeps an existing hybrid run in --work.
# A benchmark, never part of the CI test command (the hybridization takes minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=build/release
WORK=${TMPDIR:-/tmp}/edgefusion-hybridbench
STEPS=
REUSE=0
while (($#)); do
  case "$1" in
    --build) BUILD=$2; shift ;;
    --work) WORK=$2; shift ;;
    --steps) STEPS=$2; shift ;;
    --reuse) REUSE=1 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-hybrid: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
SHARED=$(cd .. && pwd)/shared
for f in models/stories260K.bin models/tok512.bin text/tinyshakespeare.txt; do
  [ -f "$SHARED/$f" ] || { echo "bench-hybrid: $SHARED/$f is missing (the shared data must sit at ../shared)" >&2; exit 1; }
done
CLI=$BUILD/app/edgefusion
if [ ! -x "$CLI" ]; then
  if [ "$BUILD" = build/release ] && [ ! -f build/release/CMakeCache.txt ]; then cmake --preset release >/dev/null; fi
  cmake --build "$BUILD" --target edgefusion >&2
fi
PY=/usr/bin/python3
mkdir -p "$WORK"

# A checkpoint-style folder (model + the config that names its text) so `evaluate --checkpoint`
# scores exactly the run's held-out tokens. $1 folder, $2 model file, $3 config.
fake_checkpoint() {
  mkdir -p "$1"
  rm -f "$1"/model.*
  cp "$2" "$1/model.${2##*.}"
  sed "s#^\(  train_text:\).*#\1 $SHARED/text/tinyshakespeare.txt#" "$3" >"$1/config.yaml"
}
ppl_of() { "$CLI" evaluate --checkpoint "$1" -c 256 --json | "$PY" -c 'import json,sys; j=json.load(sys.stdin); print("%.2f ± %.2f" % (j["ppl"], j["ppl_error"]))'; }
router_of() { "$CLI" analyze-router --checkpoint "$1" --json >"$2" 2>/dev/null; }
params_of() {
  "$CLI" inspect "$1" --json | "$PY" -c 'import json,sys; j=json.load(sys.stdin); n=j.get("parameters") or j.get("parameter_count"); print("%.2f M" % (n/1e6))'
}

echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') ($(nproc) cores); load average $(cut -d' ' -f1-3 /proc/loadavg)"

# The demo: the committed GGUF with its training config.
DEMO=resources/demo/edgefusion-demo-q8_0.gguf
fake_checkpoint "$WORK/demo/checkpoint_final" "$DEMO" resources/configs/demo_scratch.yaml
demo_ppl=$(ppl_of "$WORK/demo/checkpoint_final")
router_of "$DEMO" "$WORK/demo-router.json"
demo_params=$(params_of "$DEMO")

# The hybridized stories260K.
HCONF=resources/configs/hybridize_stories260k.yaml
if [ "$REUSE" = 0 ] || [ ! -d "$WORK/hybrid/checkpoint_final" ]; then
  rm -rf "$WORK/hybrid"
  conf=$HCONF
  if [ -n "$STEPS" ]; then
    conf=$WORK/hybridize.yaml
    sed -e "s#\.\./\.\./\.\./shared#$SHARED#" -e "s/^  steps: .*/  steps: $STEPS/" "$HCONF" >"$conf"
  fi
  echo "Hybridizing stories260K ($conf) ..."
  /usr/bin/time -f "%e s wall, %U s CPU" -o "$WORK/hybrid-time.txt" \
    "$CLI" train --config "$conf" --output-dir "$WORK/hybrid" --freeze-base --skip-quantization >"$WORK/hybrid-train.log" 2>&1 ||
    { echo "bench-hybrid: training failed, see $WORK/hybrid-train.log" >&2; exit 1; }
  echo "  took $(cat "$WORK/hybrid-time.txt")"
fi
HYB=$WORK/hybrid/checkpoint_final
hyb_model=$(ls "$HYB"/model.* | head -1)
fake_checkpoint "$WORK/hybrid-eval/checkpoint_final" "$hyb_model" "$HYB/config.yaml"
hyb_ppl=$(ppl_of "$WORK/hybrid-eval/checkpoint_final")
router_of "$HYB" "$WORK/hybrid-router.json"
hyb_params=$(params_of "$hyb_model")
# The dense teacher on the same held-out tokens (its GGUF in a folder with the run's config).
"$CLI" convert "$SHARED/models/stories260K.bin" "$WORK/stories260K.gguf" --tokenizer "$SHARED/models/tok512.bin" >/dev/null
fake_checkpoint "$WORK/dense/checkpoint_final" "$WORK/stories260K.gguf" "$HYB/config.yaml"
dense_ppl=$(ppl_of "$WORK/dense/checkpoint_final")
dense_params=$(params_of "$WORK/stories260K.gguf")
last_val=$("$PY" -c '
import json,sys
v=[json.loads(l) for l in open(sys.argv[1]) if "val_loss" in l]
print("%.3f" % v[-1]["val_loss"] if v else "n/a")' "$WORK/hybrid/train_log.jsonl")

"$PY" - "$WORK/demo-router.json" "$WORK/hybrid-router.json" <<EOF
import json, sys
rows = [("demo (from scratch, resources/demo)", "$demo_params", "$demo_ppl", "—", sys.argv[1]),
        ("stories260K hybridized (distillation KL on held-out, soft gates: $last_val nats)", "$hyb_params", "$hyb_ppl", "$dense_ppl ($dense_params)", sys.argv[2])]
print()
print("| model | params | held-out ppl (hard-routed) | dense model's ppl | gates g (attention share) | ssm_frac | gate entropy (bits) | converged | GFLOPs/token routed | dense twin | change |")
print("|---|---:|---:|---:|---|---:|---:|---|---:|---:|---:|")
for name, params, ppl, dense, path in rows:
    a = json.load(open(path))
    s = a["summary"]
    print("| %s | %s | %s | %s | %s | %.0f %% (%d/%d) | %.3f | %s | %.5f | %.5f | %+.1f %% |" % (
        name, params, ppl, dense, " ".join("%.3f" % l["gate"] for l in a["layers"]), 100 * s["ssm_frac"], s["ssm_layers"],
        s["layers"], s["mean_gate_entropy_bits"], "yes" if s["converged"] else "no", s["gflops_per_token"],
        s["dense_gflops_per_token"], -s["flops_reduction_pct"]))
EOF
echo
echo "FLOPs at position context_length / 2 (demo $(grep -o '"position": *[0-9]*' "$WORK/demo-router.json" | grep -o '[0-9]*$'), hybrid $(grep -o '"position": *[0-9]*' "$WORK/hybrid-router.json" | grep -o '[0-9]*$')); paper: ssm_frac ~68 %, entropy < 0.15 bits, -38.6 % FLOPs."
