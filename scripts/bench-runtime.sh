#!/usr/bin/env bash
# Runtime speed benchmark against llama.cpp (issue "Speed"): for synth llama d1024 L16 and mamba2
# d1024 L24 (vocab 32000) in Q8_0 and F16, our prefill (ppN) and decode (tgN) tokens/s at our best
# thread count beside llama.cpp's (node-llama-cpp 3.22.1, same file, same run) at its best, the
# targets (prefill >= 0.8x, decode >= 1.0x), decode as a share of the memory-bandwidth limit
# (measured read bandwidth / weight bytes read per token) and peak RSS against
# weights + KV cache/SSM state + 64 MiB. Prints Markdown tables; writes all raw numbers as JSON.
#
#   bash scripts/bench-runtime.sh [--quick] [--build DIR] [--work DIR] [--json OUT]
#                                 [--reps R] [--pp N] [--tg N] [--threads "1 2"]
#
# --build DIR: a configured build holding app/edgefusion and app/edgefusion-run (default
#   build/release; built with the release preset when the binaries are missing).
# --work DIR: where the models are made (default ${TMPDIR:-/tmp}/edgefusion-bench; kept, and a
#   model already there is reused). --quick: pp 64, tg 16, 1 repetition (a try-out, not a result).
# Heavy (minutes): a benchmark, never part of the CI test command. Run it on a quiet machine: both
# sides are measured back to back, so other load skews the comparison (the load average is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

BUILD=build/release
WORK=${TMPDIR:-/tmp}/edgefusion-bench
JSON_OUT=""
PP=512 TG=128 REPS=5 THREADS="1 2" QUICK=0
while (($#)); do
  case "$1" in
    --quick) QUICK=1; PP=64; TG=16; REPS=1 ;;
    --build) BUILD=$2; shift ;;
    --work) WORK=$2; shift ;;
    --json) JSON_OUT=$2; shift ;;
    --reps) REPS=$2; shift ;;
    --pp) PP=$2; shift ;;
    --tg) TG=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-runtime: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$JSON_OUT" ] || JSON_OUT=$WORK/bench-runtime.json

RUN=$BUILD/app/edgefusion-run
CLI=$BUILD/app/edgefusion
if [ ! -x "$RUN" ] || [ ! -x "$CLI" ]; then
  echo "bench-runtime: building edgefusion and edgefusion-run in $BUILD" >&2
  if [ "$BUILD" = build/release ] && [ ! -f build/release/CMakeCache.txt ]; then cmake --preset release >/dev/null; fi
  cmake --build "$BUILD" --target edgefusion edgefusion-run >&2
fi
REF=$ROOT/tests/reference
if [ ! -d "$REF/node_modules/node-llama-cpp" ]; then
  echo "bench-runtime: $REF/node_modules lacks node-llama-cpp; run bash scripts/setup.sh" >&2
  exit 1
fi
export NODE_LLAMA_CPP_SKIP_DOWNLOAD=true
mkdir -p "$WORK/runs"
rm -f "$WORK"/runs/*.json

# The models (seeded: the same bytes every time, so an existing file is reused).
MODELS=()
for spec in "llama 16" "mamba2 24"; do
  read -r arch layers <<<"$spec"
  for type in q8_0 f16; do
    m=$WORK/$arch-d1024-L$layers-$type.gguf
    if [ ! -s "$m" ]; then
      echo "bench-runtime: synth $m" >&2
      "$CLI" synth --arch "$arch" --dim 1024 --layers "$layers" --vocab 32000 --type "$type" --seed 1 -o "$m" >/dev/null
    fi
    MODELS+=("$m")
  done
done

# Memory read bandwidth at every thread count; the best is the machine's ceiling.
for t in $THREADS; do
  "$RUN" membw --size 512 -t "$t" -r 5 --json >"$WORK/runs/membw-t$t.json"
done

for m in "${MODELS[@]}"; do
  base=$(basename "$m" .gguf)
  for t in $THREADS; do
    echo "bench-runtime: $base, $t thread(s): ours" >&2
    "$RUN" bench -m "$m" --pp "$PP" --tg "$TG" -r "$REPS" -t "$t" --json >"$WORK/runs/$base-ours-t$t.json"
    echo "bench-runtime: $base, $t thread(s): llama.cpp" >&2
    node "$REF/llama_bench.mjs" -m "$m" --pp "$PP" --tg "$TG" -r "$REPS" -t "$t" >"$WORK/runs/$base-llama-t$t.json"
  done
done

CPU=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')
FLAGS=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | tr ' ' '\n' | grep -xE 'avx2|fma|f16c|avx512f|avx512bw|avx512vl|avx512_vnni|avx512_bf16|avx_vnni' | tr '\n' ' ' || true)
export BENCH_CPU="${CPU:-unknown} ($(nproc) cores; $FLAGS)" BENCH_KERNEL="$(uname -srm)" BENCH_LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
export BENCH_WORK=$WORK BENCH_JSON=$JSON_OUT BENCH_PP=$PP BENCH_TG=$TG BENCH_REPS=$REPS BENCH_THREADS=$THREADS BENCH_QUICK=$QUICK
export BENCH_MODELS="${MODELS[*]}"
node --input-type=module - <<'EOF'
import { readFileSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
const env = process.env;
const read = (f) => JSON.parse(readFileSync(`${env.BENCH_WORK}/runs/${f}`, "utf8"));
const threads = env.BENCH_THREADS.trim().split(/\s+/).map(Number);
const MiB = 1024 * 1024;
const f1 = (x) => x.toFixed(1), f2 = (x) => x.toFixed(2);

const membw = threads.map((t) => read(`membw-t${t}.json`));
const bw = Math.max(...membw.map((m) => m.best_gbps));
const bwBest = membw.find((m) => m.best_gbps === bw);

// Best thread count per side and test: the highest mean.
const best = (runs, pick) => runs.reduce((a, b) => (pick(b).avg_ts > pick(a).avg_ts ? b : a));
const rows = [];
for (const m of env.BENCH_MODELS.split(" ")) {
  const base = basename(m, ".gguf");
  const ours = threads.map((t) => {
    const j = read(`${base}-ours-t${t}.json`);
    return { t, pp: j.find((r) => r.test.startsWith("pp")), tg: j.find((r) => r.test.startsWith("tg")) };
  });
  const llama = threads.map((t) => ({ t, ...read(`${base}-llama-t${t}.json`) }));
  const oPP = best(ours, (r) => r.pp), oTG = best(ours, (r) => r.tg);
  const lPP = best(llama, (r) => r.pp), lTG = best(llama, (r) => r.tg);
  const info = ours[0].tg;
  const bytesTok = info.decode_weight_bytes;
  const limit = (bw * 1e9) / bytesTok;  // tokens/s if decode only streamed the weights
  const rssPeak = Math.max(...ours.flatMap((r) => [r.pp.peak_rss_bytes, r.tg.peak_rss_bytes]));
  const rssBudget = info.model_size + info.kv_cache_bytes + info.ssm_state_bytes + 64 * MiB;
  rows.push({
    model: base, model_type: info.model_type, kernel_isa: info.kernel_isa, n_ctx: info.n_ctx,
    weight_bytes: info.model_size, kv_cache_bytes: info.kv_cache_bytes, ssm_state_bytes: info.ssm_state_bytes,
    ours: ours.map((r) => ({ threads: r.t, pp: r.pp, tg: r.tg })), llama_cpp: llama,
    pp: { ours_ts: oPP.pp.avg_ts, ours_sd: oPP.pp.stddev_ts, ours_threads: oPP.t, llama_ts: lPP.pp.avg_ts,
          llama_sd: lPP.pp.stddev_ts, llama_threads: lPP.t, ratio: oPP.pp.avg_ts / lPP.pp.avg_ts, target: 0.8 },
    tg: { ours_ts: oTG.tg.avg_ts, ours_sd: oTG.tg.stddev_ts, ours_threads: oTG.t, llama_ts: lTG.tg.avg_ts,
          llama_sd: lTG.tg.stddev_ts, llama_threads: lTG.t, ratio: oTG.tg.avg_ts / lTG.tg.avg_ts, target: 1.0,
          llama_js_overhead_ms_per_token: lTG.tg.js_overhead_ms_per_token },
    decode_weight_bytes: bytesTok, bandwidth_limit_ts: limit,
    ours_tg_of_limit: oTG.tg.avg_ts / limit, llama_tg_of_limit: lTG.tg.avg_ts / limit,
    peak_rss_bytes: rssPeak, rss_budget_bytes: rssBudget, rss_ok: rssPeak <= rssBudget,
  });
}

const pf = (ok) => (ok ? "PASS" : "MISS");
const ts = (x, sd, t) => `${f1(x)} ± ${f1(sd)} (${t}t)`;
const pp = env.BENCH_PP, tg = env.BENCH_TG;
const out = [];
out.push(`## Runtime benchmark vs llama.cpp${env.BENCH_QUICK === "1" ? " (--quick: a try-out, not a result)" : ""}`, "");
out.push(`- CPU: ${env.BENCH_CPU}`);
out.push(`- kernel: ${env.BENCH_KERNEL}; load average at the end: ${env.BENCH_LOAD}`);
out.push(`- our kernels: ${[...new Set(rows.map((r) => `${r.model_type.split(" ").pop()} → ${r.kernel_isa}`))].join(", ")}`);
out.push(`- llama.cpp: node-llama-cpp (prebuilt CPU backend), defaults (F16 KV cache), llama.cpp's own timers`);
out.push(`- read bandwidth (edgefusion-run membw, ${bwBest.size_mib} MiB, best of ${bwBest.repetitions}): ` +
         membw.map((m) => `${f2(m.best_gbps)} GB/s at ${m.n_threads}t`).join(", "));
out.push(`- pp${pp} / tg${tg}, ${env.BENCH_REPS} repetition(s) after a warm-up, threads ${threads.join(", ")}; t/s mean ± std at the best thread count`, "");
out.push(`| model | ours pp${pp} t/s | llama.cpp pp${pp} t/s | pp ratio | ≥ 0.8 | ours tg${tg} t/s | llama.cpp tg${tg} t/s | tg ratio | ≥ 1.0 |`);
out.push("| --- | ---: | ---: | ---: | :-: | ---: | ---: | ---: | :-: |");
for (const r of rows)
  out.push(`| ${r.model} | ${ts(r.pp.ours_ts, r.pp.ours_sd, r.pp.ours_threads)} | ${ts(r.pp.llama_ts, r.pp.llama_sd, r.pp.llama_threads)} | ` +
           `${f2(r.pp.ratio)} | ${pf(r.pp.ratio >= 0.8)} | ${ts(r.tg.ours_ts, r.tg.ours_sd, r.tg.ours_threads)} | ` +
           `${ts(r.tg.llama_ts, r.tg.llama_sd, r.tg.llama_threads)} | ${f2(r.tg.ratio)} | ${pf(r.tg.ratio >= 1.0)} |`);
out.push("");
out.push(`| model | MiB read / token | bandwidth limit t/s | ours tg % of limit | llama.cpp tg % of limit | peak RSS MiB | weights + KV/state + 64 MiB | RSS |`);
out.push("| --- | ---: | ---: | ---: | ---: | ---: | ---: | :-: |");
for (const r of rows)
  out.push(`| ${r.model} | ${f1(r.decode_weight_bytes / MiB)} | ${f1(r.bandwidth_limit_ts)} | ${f1(100 * r.ours_tg_of_limit)}% | ` +
           `${f1(100 * r.llama_tg_of_limit)}% | ${f1(r.peak_rss_bytes / MiB)} | ` +
           `${f1(r.weight_bytes / MiB)} + ${f1((r.kv_cache_bytes + r.ssm_state_bytes) / MiB)} + 64 = ${f1(r.rss_budget_bytes / MiB)} | ${pf(r.rss_ok)} |`);
out.push("");
out.push("Per thread count (t/s): " + rows.map((r) => `${r.model}: ours pp ${r.ours.map((o) => `${o.threads}t ${f1(o.pp.avg_ts)}`).join("/")}, ` +
         `tg ${r.ours.map((o) => `${o.threads}t ${f1(o.tg.avg_ts)}`).join("/")}; llama.cpp pp ${r.llama_cpp.map((o) => `${o.t}t ${f1(o.pp.avg_ts)}`).join("/")}, ` +
         `tg ${r.llama_cpp.map((o) => `${o.t}t ${f1(o.tg.avg_ts)}`).join("/")}`).join("; "));
out.push(`llama.cpp's JS overhead (node-llama-cpp, outside llama.cpp's timers, not counted): ` +
         rows.map((r) => `${f2(r.tg.llama_js_overhead_ms_per_token)} ms/token`).join(", ") + " in tg.");
console.log(out.join("\n"));
const json = { machine: { cpu: env.BENCH_CPU, kernel: env.BENCH_KERNEL, load_average: env.BENCH_LOAD },
               settings: { pp: Number(pp), tg: Number(tg), repetitions: Number(env.BENCH_REPS), threads, quick: env.BENCH_QUICK === "1" },
               membw, bandwidth_gbps: bw, models: rows };
writeFileSync(env.BENCH_JSON, JSON.stringify(json, null, 1) + "\n");
console.log(`\nJSON: ${env.BENCH_JSON}`);
EOF
