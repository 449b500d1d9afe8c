// Independent runtime reference: loads a GGUF with llama.cpp (node-llama-cpp, CPU only, F32 KV cache)
// and prints JSON {n_vocab, logits: [[...per position...]], greedy: [ids], text}.
//   node llama_eval.mjs --model PATH --tokens 1,2,3 [--greedy N] [--logits] [--context N] [--inspect]
// --logits prints the full logit vector after every prompt position (index = token id);
// --greedy N continues N tokens with llama.cpp's own temperature-0 sampler;
// --inspect prints what llama.cpp made of the file (architecture, sizes, parameters) instead.
// llama.cpp's log lines (warnings and errors, e.g. why a file was rejected) go to stderr.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
if (!existsSync(join(here, "node_modules", "node-llama-cpp"))) {
    console.error(`llama_eval.mjs: ${join(here, "node_modules")} lacks node-llama-cpp; ` +
                  "run `bash scripts/setup.sh` (npm install in tests/reference)");
    process.exit(2);
}

function parseArgs(argv) {
    const a = { model: null, tokens: [], greedy: 0, logits: false, inspect: false, context: 0, verbose: false };
    for (let i = 0; i < argv.length; ++i) {
        const k = argv[i];
        const next = () => {
            if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
            return argv[++i];
        };
        if (k === "--model") a.model = next();
        else if (k === "--tokens") a.tokens = next().split(",").filter((s) => s.length).map((s) => {
            const v = Number(s);
            if (!Number.isInteger(v) || v < 0) throw new Error(`bad token id '${s}'`);
            return v;
        });
        else if (k === "--greedy") a.greedy = Number(next());
        else if (k === "--context") a.context = Number(next());
        else if (k === "--logits") a.logits = true;
        else if (k === "--inspect") a.inspect = true;
        else if (k === "--verbose") a.verbose = true;
        else throw new Error(`unknown argument '${k}'`);
    }
    if (!a.model) throw new Error("--model PATH is required");
    if (!a.inspect && a.tokens.length === 0) throw new Error("--tokens 1,2,3 is required");
    if (!Number.isInteger(a.greedy) || a.greedy < 0) throw new Error("--greedy takes a count");
    return a;
}

let args;
try {
    args = parseArgs(process.argv.slice(2));
} catch (e) {
    console.error(`llama_eval.mjs: ${e.message}`);
    console.error("usage: node llama_eval.mjs --model PATH --tokens 1,2,3 [--greedy N] [--logits] [--inspect]");
    process.exit(2);
}
if (!existsSync(args.model)) {
    console.error(`llama_eval.mjs: no such file: ${args.model}`);
    process.exit(2);
}

const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
const llama = await getLlama({
    gpu: false,
    build: "never",
    skipDownload: true,
    logLevel: args.verbose ? LlamaLogLevel.debug : LlamaLogLevel.warn,
    logger: (level, message) => process.stderr.write(`[llama.cpp ${level}] ${message}${message.endsWith("\n") ? "" : "\n"}`),
});

let model;
try {
    model = await llama.loadModel({ modelPath: args.model, gpuLayers: 0 });
} catch (e) {
    console.error(`llama_eval.mjs: llama.cpp could not load ${args.model}: ${e?.message ?? e}`);
    process.exit(1);
}

const big = (_k, v) => (typeof v === "bigint" ? v.toString() : v);
if (args.inspect) {
    const info = {
        architecture: model.fileInfo.metadata?.general?.architecture,
        typeDescription: model.typeDescription,
        trainContextSize: model.trainContextSize,
        embeddingVectorSize: model.embeddingVectorSize,
        vocabularyType: model.vocabularyType,
        size: model.size,
        bos: model.tokens.bos,
        eos: model.tokens.eos,
        tensorCount: model.fileInfo.fullTensorInfo?.length ?? model.fileInfo.tensorInfo?.length,
        architectureMetadata: model.fileInfo.architectureMetadata,
    };
    process.stdout.write(JSON.stringify(info, big) + "\n");
    await model.dispose();
    await llama.dispose();
    process.exit(0);
}

const trainCtx = model.trainContextSize > 0 ? model.trainContextSize : 512;
const needed = args.tokens.length + args.greedy + 1;
const contextSize = args.context > 0 ? args.context : Math.min(trainCtx, Math.max(needed, 64));
let context;
try {
    context = await model.createContext({
        contextSize,
        batchSize: Math.max(args.tokens.length, 1),
        sequences: 1,
        experimentalKvCacheKeyType: "F32",
        experimentalKvCacheValueType: "F32",
        flashAttention: false,
    });
} catch (e) {
    console.error(`llama_eval.mjs: llama.cpp could not create a context for ${args.model}: ${e?.message ?? e}`);
    process.exit(1);
}
const sequence = context.getSequence();

// Dense logit vector from node-llama-cpp's Map (sorted by value, keyed by token id).
function dense(map) {
    let n = 0;
    for (const k of map.keys()) n = Math.max(n, k + 1);
    const out = new Array(n).fill(null);
    for (const [k, v] of map) out[k] = v;
    return out;
}

const greedyOptions = { token: true, options: { temperature: 0 } };
const input = args.tokens.map((t, i) => {
    const last = i === args.tokens.length - 1;
    const generateNext = {};
    if (args.logits) generateNext.logits = true;
    if (last && args.greedy > 0) Object.assign(generateNext, greedyOptions);
    return Object.keys(generateNext).length ? [t, { generateNext }] : t;
});

const logits = [];
const greedy = [];
let nVocab = 0;
const results = await sequence.controlledEvaluate(input);
for (let i = 0; i < args.tokens.length; ++i) {
    const r = results[i];
    if (args.logits) {
        if (!r?.next?.logits) {
            console.error(`llama_eval.mjs: no logits came back for position ${i}`);
            process.exit(1);
        }
        const row = dense(r.next.logits);
        nVocab = Math.max(nVocab, row.length);
        logits.push(row);
    }
}
let nextToken = args.greedy > 0 ? results[args.tokens.length - 1]?.next?.token : null;
for (let g = 0; g < args.greedy; ++g) {
    if (nextToken == null) {
        console.error(`llama_eval.mjs: llama.cpp produced no token at greedy step ${g}`);
        process.exit(1);
    }
    greedy.push(nextToken);
    if (g + 1 === args.greedy) break;
    const [r] = await sequence.controlledEvaluate([[nextToken, { generateNext: greedyOptions }]]);
    nextToken = r?.next?.token;
}

let text = "";
try {
    text = model.detokenize(greedy);
} catch {
    text = "";
}
process.stdout.write(JSON.stringify({ n_vocab: nVocab, logits, greedy, text }, big) + "\n");
await context.dispose();
await model.dispose();
await llama.dispose();
