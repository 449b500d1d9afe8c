#!/usr/bin/python3
"""Independent reader for EdgeFusion HDF5 checkpoints: h5py + numpy only, with the zstd filter
loaded by HDF5 from HDF5_PLUGIN_PATH (this script never registers a filter itself).

Usage: read_hdf5.py FILE [MAX_VALUES]
Prints one JSON object:
  attrs:   root attributes (strings decoded, numpy scalars as numbers)
  vocab:   {attrs: {...}, <dataset>: [values...]} for every dataset in /vocab
  tensors: [{name, dtype (numpy), shape, attrs, filters: [{id, cd_values, name}], sha256 of the raw
            little-endian bytes, values (float datasets with at most MAX_VALUES elements, default
            100000, as float64 so float32/float16 values are exact)}] in creation order
"""
import hashlib
import json
import sys

import h5py
import numpy as np


def plain(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    if isinstance(v, np.ndarray):
        return [plain(x) for x in v.tolist()]
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def attrs_of(obj):
    return {k: plain(obj.attrs[k]) for k in obj.attrs}


def filters_of(ds):
    dcpl = ds.id.get_create_plist()
    out = []
    for i in range(dcpl.get_nfilters()):
        code, _flags, values, name = dcpl.get_filter(i)
        out.append({"id": int(code), "cd_values": [int(x) for x in values], "name": plain(name)})
    return out


def creation_order(group):
    names = []
    try:
        group.id.links.iterate(lambda n: names.append(n.decode("utf-8")) and None,
                               idx_type=h5py.h5.INDEX_CRT_ORDER)
    except Exception:  # creation order not tracked: fall back to name order
        names = list(group.keys())
    return names


def main():
    path = sys.argv[1]
    max_values = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
    out = {"h5py": h5py.version.version, "hdf5": h5py.version.hdf5_version}
    with h5py.File(path, "r") as f:
        out["attrs"] = attrs_of(f)
        vocab = {}
        if "vocab" in f:
            g = f["vocab"]
            vocab["attrs"] = attrs_of(g)
            for name in g:
                ds = g[name]
                if h5py.check_string_dtype(ds.dtype) is not None:
                    vocab[name] = [plain(s) for s in ds[...]]
                else:
                    vocab[name] = ds[...].astype(np.float64 if ds.dtype.kind == "f" else np.int64).tolist()
        out["vocab"] = vocab
        tensors = []
        g = f["tensors"]
        for name in creation_order(g):
            ds = g[name]
            data = ds[...]
            raw = np.ascontiguousarray(data).astype(data.dtype.newbyteorder("<")).tobytes()
            entry = {
                "name": name,
                "dtype": str(data.dtype),
                "shape": list(ds.shape),
                "attrs": attrs_of(ds),
                "filters": filters_of(ds),
                "sha256": hashlib.sha256(raw).hexdigest(),
            }
            if data.dtype.kind == "f" and data.size <= max_values:
                entry["values"] = data.astype(np.float64).ravel().tolist()
            tensors.append(entry)
        out["tensors"] = tensors
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
