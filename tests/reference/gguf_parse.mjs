// Independent GGUF reference: parses a local file with @huggingface/gguf and prints
// {version, metadata: {key: {type, subType?, value}}, tensorInfos: [...], tensorDataOffset} as JSON.
// 64-bit integers (BigInt) are printed as decimal strings so nothing loses precision.
// Usage: node gguf_parse.mjs PATH
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
if (!existsSync(join(here, "node_modules", "@huggingface", "gguf"))) {
    console.error(`gguf_parse.mjs: ${join(here, "node_modules")} lacks @huggingface/gguf; ` +
                  "run `bash scripts/setup.sh` (npm install in tests/reference)");
    process.exit(2);
}
const path = process.argv[2];
if (!path) {
    console.error("usage: node gguf_parse.mjs PATH");
    process.exit(2);
}
if (!existsSync(path)) {
    console.error(`gguf_parse.mjs: no such file: ${path}`);
    process.exit(2);
}

const { gguf } = await import("@huggingface/gguf");
let parsed;
try {
    parsed = await gguf(path, { allowLocalFile: true, typedMetadata: true });
} catch (e) {
    console.error(`gguf_parse.mjs: @huggingface/gguf could not parse ${path}: ${e?.message ?? e}`);
    process.exit(1);
}

const big = (_k, v) => (typeof v === "bigint" ? v.toString() : v);
const metadata = {};
for (const [key, entry] of Object.entries(parsed.typedMetadata)) {
    if (key === "version" || key === "tensor_count" || key === "kv_count") continue;
    metadata[key] = entry;
}
const out = {
    version: parsed.typedMetadata.version.value,
    tensor_count: parsed.typedMetadata.tensor_count.value,
    kv_count: parsed.typedMetadata.kv_count.value,
    littleEndian: parsed.littleEndian,
    tensorDataOffset: parsed.tensorDataOffset,
    metadata,
    tensorInfos: parsed.tensorInfos,
};
process.stdout.write(JSON.stringify(out, big) + "\n");
