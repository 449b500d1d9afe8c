#!/usr/bin/python3
"""Independent safetensors reader for the tests (no EdgeFusion code involved).

Parses a .safetensors file from the public format description with the standard library and
numpy only (Debian has no python3-safetensors package and no npm package reads local files):
  u64 little-endian N | N bytes of JSON header | data buffer
Checks the rules the reference implementation enforces: N within the file, a JSON object,
known dtypes, byte ranges that match dtype x shape and tile the data buffer without holes or
overlaps, and string-valued __metadata__.

Prints JSON: {"header_length", "metadata", "tensors": {name: {"dtype", "shape", "data_offsets",
"values"?}}}. --values adds every tensor's values as floats (rows in file order);
--permute NAME:N_HEAD first applies llama.cpp's convert_hf_to_gguf q/k permutation
(reshape(n_head, 2, rows/n_head/2, ...).swapaxes(1, 2)) to tensor NAME, i.e. shows it in the
interleaved GGUF order. Exit status 1 with a message on stderr when a rule is broken.
"""
import json
import struct
import sys

import numpy as np

SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
         "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def fail(msg):
    print(f"read_safetensors.py: {msg}", file=sys.stderr)
    sys.exit(1)


def as_float(raw, dtype):
    if dtype == "F32":
        return np.frombuffer(raw, dtype="<f4").astype(np.float64)
    if dtype == "F16":
        return np.frombuffer(raw, dtype="<f2").astype(np.float64)
    if dtype == "BF16":
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).astype(np.float64)
    fail(f"values of dtype {dtype} are not supported here")


def main(argv):
    path, want_values, permutes = None, False, {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--values":
            want_values = True
        elif a == "--permute":
            i += 1
            name, n_head = argv[i].rsplit(":", 1)
            permutes[name] = int(n_head)
        else:
            path = a
        i += 1
    if not path:
        fail("usage: read_safetensors.py FILE [--values] [--permute NAME:N_HEAD]")
    data = open(path, "rb").read()
    if len(data) < 8:
        fail("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        fail(f"header length {n} exceeds the file")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except Exception as e:  # noqa: BLE001
        fail(f"header is not JSON: {e}")
    if not isinstance(header, dict):
        fail("header is not an object")
    buf = data[8 + n:]
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        fail("__metadata__ must map strings to strings")
    ranges = []
    out = {}
    for name, e in header.items():
        dtype, shape, (b, end) = e["dtype"], e["shape"], e["data_offsets"]
        if dtype not in SIZES:
            fail(f"{name}: unknown dtype {dtype}")
        if any((not isinstance(d, int)) or d < 0 for d in shape):
            fail(f"{name}: bad shape {shape}")
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if end - b != count * SIZES[dtype] or b > end or end > len(buf):
            fail(f"{name}: data_offsets {b},{end} do not fit {dtype} {shape} in a {len(buf)}-byte buffer")
        ranges.append((b, end, name))
        t = {"dtype": dtype, "shape": shape, "data_offsets": [b, end]}
        if want_values or name in permutes:
            v = as_float(buf[b:end], dtype)
            if name in permutes:
                nh = permutes[name]
                w = v.reshape(shape)
                w = w.reshape(nh, 2, w.shape[0] // nh // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
                v = w.reshape(-1)
            t["values"] = [float(x) for x in v]
        out[name] = t
    pos = 0
    for b, end, name in sorted(ranges):
        if b != pos:
            fail(f"{name}: starts at {b}, expected {pos} (hole or overlap)")
        pos = end
    if pos != len(buf):
        fail(f"data buffer has {len(buf) - pos} unused trailing bytes")
    json.dump({"header_length": n, "metadata": meta, "tensors": out}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
