// llama.cpp's speed on a GGUF, llama-bench style, through node-llama-cpp (CPU only): the reference
// side of scripts/bench-runtime.sh. Prints one JSON object:
//   {model, n_threads, pp: {n_tokens, avg_ts, stddev_ts, samples_ts, wall_avg_ts},
//    tg: {..., js_overhead_ms_per_token}, ...}
//   node llama_bench.mjs --model PATH [--pp 512] [--tg 128] [-r 5] [-t 1] [--ctx N]
//
// pp: the context is cleared, then the N prompt tokens go to llama.cpp in ONE call (batch size >= N,
//     so one llama_decode, as llama-bench's ppN). tg: the context is cleared, then N tokens are
//     decoded one at a time (node-llama-cpp's evaluate generator, greedy sampling), as llama-bench's
//     tgN. One warm-up run of each first; then -r repetitions; mean and sample std of tokens/s.
//
// Which clock: llama.cpp's own counters (llama_perf_context, read through context.printTimings()
// with performanceTracking on) time the decode calls inside llama.cpp, so the reported avg_ts excludes
// node-llama-cpp's JS work. The wall-clock rate around the JS call is reported beside it
// (wall_avg_ts) and the difference per generated token as js_overhead_ms_per_token: measured here
// (2 cores, d1024 models) it is ~0.3-0.7 ms per token for tg (the event loop hop, the greedy sampler,
// the generator), a few percent of a 10 ms token, and ~0 for pp (one call). Comparing against the
// llama.cpp clock therefore never flatters our runtime.
// llama.cpp runs with its defaults otherwise (F16 KV cache, no flash attention, mmap).
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
if (!existsSync(join(here, "node_modules", "node-llama-cpp"))) {
    console.error(`llama_bench.mjs: ${join(here, "node_modules")} lacks node-llama-cpp; ` +
                  "run `bash scripts/setup.sh` (npm install in tests/reference)");
    process.exit(2);
}

function parseArgs(argv) {
    const a = { model: null, pp: 512, tg: 128, reps: 5, threads: 1, ctx: 0 };
    for (let i = 0; i < argv.length; ++i) {
        const k = argv[i];
        const next = () => {
            if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
            return argv[++i];
        };
        const int = (lo) => {
            const v = Number(next());
            if (!Number.isInteger(v) || v < lo) throw new Error(`${k} takes an integer >= ${lo}`);
            return v;
        };
        if (k === "--model" || k === "-m") a.model = next();
        else if (k === "--pp" || k === "-p") a.pp = int(0);
        else if (k === "--tg" || k === "-n") a.tg = int(0);
        else if (k === "--repetitions" || k === "-r") a.reps = int(1);
        else if (k === "--threads" || k === "-t") a.threads = int(1);
        else if (k === "--ctx" || k === "-c") a.ctx = int(0);
        else throw new Error(`unknown argument '${k}'`);
    }
    if (!a.model) throw new Error("--model PATH is required");
    if (a.pp === 0 && a.tg === 0) throw new Error("nothing to measure: --pp and --tg are both 0");
    return a;
}

let args;
try {
    args = parseArgs(process.argv.slice(2));
} catch (e) {
    console.error(`llama_bench.mjs: ${e.message}`);
    console.error("usage: node llama_bench.mjs --model PATH [--pp 512] [--tg 128] [-r 5] [-t 1] [--ctx N]");
    process.exit(2);
}
if (!existsSync(args.model)) {
    console.error(`llama_bench.mjs: no such file: ${args.model}`);
    process.exit(2);
}

// llama.cpp's log: the perf lines are collected; warnings and errors go to stderr.
let perfLog = "";
const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
const llama = await getLlama({
    gpu: false,
    build: "never",
    skipDownload: true,
    maxThreads: 0,  // the context's thread count is then exactly --threads (not a hint)
    logLevel: LlamaLogLevel.info,
    logger: (level, message) => {
        if (message.includes("llama_perf_context_print")) perfLog += message + "\n";
        else if (level === "error" || level === "warn") process.stderr.write(`[llama.cpp ${level}] ${message.trimEnd()}\n`);
    },
});

let model, context;
try {
    model = await llama.loadModel({ modelPath: args.model, gpuLayers: 0 });
    const need = Math.max(args.pp, args.tg) + 8;
    context = await model.createContext({
        contextSize: args.ctx > 0 ? args.ctx : Math.max(256, Math.ceil(need / 256) * 256),
        batchSize: Math.max(args.pp, 1),  // the whole prompt in one llama_decode
        sequences: 1,
        threads: args.threads,
        performanceTracking: true,
    });
} catch (e) {
    console.error(`llama_bench.mjs: llama.cpp could not load ${args.model}: ${e?.message ?? e}`);
    process.exit(1);
}
const sequence = context.getSequence();

// Seeded token ids (any valid ids; speed does not depend on them), avoiding the special ids 0..2.
function tokens(n, seed) {
    let s = BigInt(seed) * 0x9E3779B97F4A7C15n & 0xFFFFFFFFFFFFFFFFn;
    const vocab = model.fileInfo.tensorInfo?.find((t) => t.name === "token_embd.weight")?.dimensions?.[1];
    const v = Number(vocab ?? 32000);
    const out = [];
    for (let i = 0; i < n; ++i) {
        s = (s * 6364136223846793005n + 1442695040888963407n) & 0xFFFFFFFFFFFFFFFFn;
        out.push(3 + Number((s >> 33n) % BigInt(Math.max(1, v - 3))));
    }
    return out;
}

// Reads and resets llama.cpp's counters: {prompt_ms, prompt_tokens, eval_ms, eval_runs}.
async function takeTimings() {
    perfLog = "";
    await context.printTimings();
    const num = (re) => {
        const m = perfLog.match(re);
        return m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
    };
    const [prompt_ms, prompt_tokens] = num(/prompt eval time\s*=\s*([\d.]+) ms\s*\/\s*(\d+) tokens/);
    const [eval_ms, eval_runs] = num(/[^t] eval time\s*=\s*([\d.]+) ms\s*\/\s*(\d+) runs/);
    return { prompt_ms, prompt_tokens, eval_ms, eval_runs };
}

async function runPrefill(toks) {
    await sequence.clearHistory();
    await takeTimings();
    const t0 = performance.now();
    await sequence.evaluateWithoutGeneratingNewTokens(toks);
    const wall = performance.now() - t0;
    const t = await takeTimings();
    if (t.prompt_tokens !== toks.length) throw new Error(`llama.cpp counted ${t.prompt_tokens} prompt tokens, expected ${toks.length}`);
    return { ms: t.prompt_ms, wall };
}

async function runDecode(n, first) {
    await sequence.clearHistory();
    await takeTimings();
    let got = 0;
    const t0 = performance.now();
    // The first token and every generated one are single-token decodes; stop after n decodes.
    for await (const _tok of sequence.evaluate([first], { temperature: 0 })) {
        if (++got >= n) break;
    }
    const wall = performance.now() - t0;
    const t = await takeTimings();
    // llama.cpp counts single-token batches as "eval runs" (the first token included).
    if (!(t.eval_runs >= n)) throw new Error(`llama.cpp counted ${t.eval_runs} eval runs, expected ${n}`);
    return { ms: t.eval_ms * n / t.eval_runs, wall, runs: t.eval_runs };
}

function stats(n, ms, wall) {
    const ts = ms.map((x) => n / (x / 1000));
    const mean = ts.reduce((a, b) => a + b, 0) / ts.length;
    const sd = ts.length > 1 ? Math.sqrt(ts.reduce((a, b) => a + (b - mean) ** 2, 0) / (ts.length - 1)) : 0;
    const wallTs = wall.map((x) => n / (x / 1000));
    const wallMean = wallTs.reduce((a, b) => a + b, 0) / wallTs.length;
    const overhead = wall.reduce((a, b, i) => a + (b - ms[i]), 0) / wall.length / n;
    const r = (x) => Number(x.toPrecision(6));
    return { n_tokens: n, avg_ts: r(mean), stddev_ts: r(sd), samples_ts: ts.map(r), wall_avg_ts: r(wallMean),
             js_overhead_ms_per_token: r(overhead) };
}

const out = {
    model: args.model,
    backend: "llama.cpp (node-llama-cpp, CPU)",
    n_threads: args.threads,
    context_threads: context.currentThreads,
    context_size: context.contextSize,
    batch_size: context.batchSize,
    repetitions: args.reps,
};
try {
    if (args.pp > 0) {
        const toks = tokens(args.pp, 1);
        await runPrefill(toks);  // warm-up
        const ms = [], wall = [];
        for (let r = 0; r < args.reps; ++r) {
            const x = await runPrefill(toks);
            ms.push(x.ms);
            wall.push(x.wall);
        }
        out.pp = stats(args.pp, ms, wall);
    }
    if (args.tg > 0) {
        const first = tokens(1, 2)[0];
        await runDecode(Math.min(args.tg, 16), first);  // warm-up
        const ms = [], wall = [];
        for (let r = 0; r < args.reps; ++r) {
            const x = await runDecode(args.tg, first);
            ms.push(x.ms);
            wall.push(x.wall);
        }
        out.tg = stats(args.tg, ms, wall);
    }
} catch (e) {
    console.error(`llama_bench.mjs: ${e?.message ?? e}`);
    process.exit(1);
}
out.peak_rss_bytes = process.resourceUsage().maxRSS * 1024;  // the whole node process
process.stdout.write(JSON.stringify(out) + "\n");
await context.dispose();
await model.dispose();
await llama.dispose();
