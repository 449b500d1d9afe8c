#!/usr/bin/python3
"""Independent check of an EdgeFusion checkpoint's /analysis/outliers and /quantized groups with
h5py + numpy only (the zstd filter comes from HDF5_PLUGIN_PATH).

Usage: check_outliers_hdf5.py FILE
Recomputes, from the master weights in /tensors (float datasets), with numpy in float64:
  per block of B inputs: max|w| / sqrt(mean w^2), excess kurtosis (population moments, block mean),
  count of |w - mu| > k * sigma with the tensor's mean and population std, and the model's top-p
  outliers by |w| or, for saliency, w * w * e in float32 with the stored activation_energy (N = floor(p * n), a stable sort over the analysed tensors
  concatenated in their order, so ties are taken in model order), then compares with what the file
  stores. Prints one JSON object:
  attrs: /analysis/outliers attributes
  tensors: [{name, shape, max_rel_err_max_over_rms, max_abs_err_kurtosis, beyond_equal, budget_equal,
             budget (numpy), nan_mismatch}]
  layers: {layer: [...], budget: [...], budget_numpy: [...], budget_share: [...]}
  variants: {name: {description, tensors: [{name, dtype, shape, sha256}]}}
"""
import hashlib
import json
import sys

import h5py
import numpy as np


def plain(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return [plain(x) for x in v.tolist()]
    return v


def ordered(group):
    names = []
    try:
        group.id.links.iterate(lambda n: names.append(n.decode("utf-8")) and None,
                               idx_type=h5py.h5.INDEX_CRT_ORDER)
    except Exception:
        names = list(group.keys())
    return names


def blocks_of(w, B):
    """w: (R, C) float64 -> (R, nb, B) with NaN padding of a short last block."""
    r, c = w.shape
    nb = -(-c // B)
    pad = np.full((r, nb * B), np.nan)
    pad[:, :c] = w
    return pad.reshape(r, nb, B)


def main():
    path = sys.argv[1]
    out = {}
    with h5py.File(path, "r") as f:
        g = f["analysis/outliers"]
        attrs = {k: plain(g.attrs[k]) for k in g.attrs}
        out["attrs"] = attrs
        B, k, p = int(attrs["block"]), float(attrs["k"]), float(attrs["fraction"])
        names = ordered(g["tensors"])
        masters = []
        for name in names:
            w = f["tensors"][name][...].astype(np.float64)
            masters.append(w.reshape(-1, w.shape[-1]))

        # Budget: global top N by score, ties in model order (stable sort of the negated scores).
        # Saliency scores w * w * e in float32, as the analysis computes them, with the stored energies.
        if attrs["selection"] == "saliency":
            parts = []
            for name, w in zip(names, masters):
                e = g["tensors"][name]["activation_energy"][...].astype(np.float32)
                w32 = w.astype(np.float32)
                parts.append(((w32 * w32) * e[np.newaxis, :]).astype(np.float64).ravel())
            scores = np.concatenate(parts)
        else:
            scores = np.concatenate([np.abs(w).ravel() for w in masters])
        n = scores.size
        N = int(np.floor(p * n))
        chosen = np.zeros(n, dtype=bool)
        if N > 0:
            chosen[np.argsort(-scores, kind="stable")[:N]] = True

        tensors = []
        offset = 0
        for name, w in zip(names, masters):
            t = g["tensors"][name]
            r, c = w.shape
            blk = blocks_of(w, B)
            with np.errstate(invalid="ignore", divide="ignore"):
                rms = np.sqrt(np.nanmean(blk ** 2, axis=2))
                mor = np.nanmax(np.abs(blk), axis=2) / rms
                mor[rms == 0] = np.nan
                d = blk - np.nanmean(blk, axis=2, keepdims=True)
                m2 = np.nanmean(d ** 2, axis=2)
                m4 = np.nanmean(d ** 4, axis=2)
                kurt = m4 / (m2 * m2) - 3.0
                kurt[m2 == 0] = np.nan
            mu, sigma = w.mean(), w.std()
            beyond = np.nansum(np.abs(blk - mu) > k * sigma, axis=2)
            sel = blocks_of(chosen[offset:offset + w.size].reshape(r, c).astype(np.float64), B)
            budget = np.nansum(sel, axis=2).astype(np.int64)
            offset += w.size

            ours_mor = t["max_over_rms"][...].astype(np.float64)
            ours_kurt = t["kurtosis"][...].astype(np.float64)
            both = ~np.isnan(mor) & ~np.isnan(ours_mor)
            bothk = ~np.isnan(kurt) & ~np.isnan(ours_kurt)
            tensors.append({
                "name": name,
                "shape": list(ours_mor.shape),
                "expected_shape": [r, -(-c // B)],
                "max_rel_err_max_over_rms": float(np.max(np.abs(ours_mor[both] - mor[both]) / mor[both], initial=0.0)),
                "max_abs_err_kurtosis": float(np.max(np.abs(ours_kurt[bothk] - kurt[bothk]), initial=0.0)),
                "nan_mismatch": int(np.sum(np.isnan(mor) != np.isnan(ours_mor)) + np.sum(np.isnan(kurt) != np.isnan(ours_kurt))),
                "beyond_equal": bool(np.array_equal(t["beyond_k_sigma"][...], beyond)),
                "budget_equal": bool(np.array_equal(t["budget"][...], budget)),
                "budget": int(budget.sum()),
                "tensor_kurtosis_numpy": float(((w - mu) ** 4).mean() / (w.var() ** 2) - 3.0),
                "tensor_kurtosis": float(t.attrs["kurtosis"]),
            })
        out["tensors"] = tensors
        out["budget_numpy"] = N
        lg = g["layers"]
        out["layers"] = {k: plain(lg[k][...]) for k in lg}

        variants = {}
        if "quantized" in f:
            for vname in ordered(f["quantized"]):
                vg = f["quantized"][vname]
                entry = {"description": plain(vg.attrs.get("description", b"")), "tensors": []}
                for tname in ordered(vg):
                    ds = vg[tname]
                    data = ds[...]
                    raw = np.ascontiguousarray(data).astype(data.dtype.newbyteorder("<")).tobytes()
                    entry["tensors"].append({"name": tname, "dtype": plain(ds.attrs["dtype"]),
                                             "shape": plain(ds.attrs["shape"]),
                                             "sha256": hashlib.sha256(raw).hexdigest()})
                variants[vname] = entry
        out["variants"] = variants
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
