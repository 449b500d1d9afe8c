// Independent tokenizer reference: llama.cpp (node-llama-cpp) loads a GGUF's vocabulary only and
// tokenizes a UTF-8 text file with add_special = false; writes the ids, space-separated, to --out.
//   node llama_tokenize.mjs --model PATH --text FILE --out FILE [--special]
// --special also parses special-token text (parse_special = true).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
if (!existsSync(join(here, "node_modules", "node-llama-cpp"))) {
    console.error(`llama_tokenize.mjs: ${join(here, "node_modules")} lacks node-llama-cpp; ` +
                  "run `bash scripts/setup.sh` (npm install in tests/reference)");
    process.exit(2);
}

const a = { model: null, text: null, out: null, special: false };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; ++i) {
    const k = argv[i];
    if (k === "--special") a.special = true;
    else if ((k === "--model" || k === "--text" || k === "--out") && i + 1 < argv.length) a[k.slice(2)] = argv[++i];
    else {
        console.error(`llama_tokenize.mjs: bad argument '${k}'`);
        process.exit(2);
    }
}
if (!a.model || !a.text || !a.out) {
    console.error("usage: node llama_tokenize.mjs --model PATH --text FILE --out FILE [--special]");
    process.exit(2);
}
for (const f of [a.model, a.text]) {
    if (!existsSync(f)) {
        console.error(`llama_tokenize.mjs: no such file: ${f}`);
        process.exit(2);
    }
}

const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
const llama = await getLlama({
    gpu: false,
    build: "never",
    skipDownload: true,
    logLevel: LlamaLogLevel.warn,
    logger: (level, message) => process.stderr.write(`[llama.cpp ${level}] ${message}${message.endsWith("\n") ? "" : "\n"}`),
});
let model;
try {
    model = await llama.loadModel({ modelPath: a.model, gpuLayers: 0, vocabOnly: true });
} catch (e) {
    console.error(`llama_tokenize.mjs: llama.cpp could not load ${a.model}: ${e?.message ?? e}`);
    process.exit(1);
}
const text = readFileSync(a.text, "utf8");
const ids = model.tokenize(text, a.special);
writeFileSync(a.out, Array.from(ids).join(" ") + "\n");
await model.dispose();
await llama.dispose();
