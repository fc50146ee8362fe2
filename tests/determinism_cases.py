"""The determinism matrix's cases: every pick and score fastal returns, as one hash per case.

``cases(fmt, chunk_rows, tmp)`` runs every public selection path on a fixed small pool with
adversarial ties (duplicated rows, equal probabilities) and returns ``{case: sha256}`` of
the indices and scores. ``tests/test_determinism.py`` compares these hashes across chunk
sizes, Numba threads, BLAS/OpenMP threads, input formats, and (in subprocesses, through
``python tests/determinism_cases.py``) OpenBLAS core types and Numba CPU targets.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

N, C, D, M, K = 400, 5, 8, 4, 40
FORMATS = ("numpy", "ipc", "parquet", "dataset")


def pool_arrays():
    """Embeddings, logits, probabilities, member logits, labeled rows (fixed seed, with ties)."""
    rng = np.random.default_rng(2026)
    X = rng.standard_normal((N, D)).astype(np.float32)
    X[N // 2:N // 2 + 20] = X[:20]                  # exact duplicate rows
    logits = (X @ rng.standard_normal((D, C))).astype(np.float32)
    logits[100:110] = logits[100]                    # equal scores: ties broken by row
    logits[110:115] = 0.0                            # uniform rows
    z = np.exp(logits.astype(np.float64) - logits.max(axis=1, keepdims=True))
    probs = (z / z.sum(axis=1, keepdims=True)).astype(np.float32)
    members = (logits[None] + rng.standard_normal((M, N, C))).astype(np.float32)
    labeled = rng.choice(N, size=30, replace=False)
    return X, logits, probs, members, labeled


def _digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _write(fmt, tmp: Path, name, columns: dict):
    """The columns as a table in format fmt; returns what fastal reads (a table or a path)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {}
    for col, values in columns.items():
        values = np.ascontiguousarray(values)
        if values.ndim == 1:
            arrays[col] = pa.array(values)
        else:
            flat = pa.array(values.reshape(-1))
            arrays[col] = pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
    table = pa.table(arrays)
    if fmt == "ipc":
        path = tmp / f"{name}.arrow"
        with pa.ipc.new_file(str(path), table.schema) as w:
            for batch in table.to_batches(max_chunksize=97):
                w.write_batch(batch)
        return path
    if fmt == "parquet":
        path = tmp / f"{name}.parquet"
        pq.write_table(table, path, row_group_size=131)
        return path
    if fmt == "dataset":
        path = tmp / name
        path.mkdir()
        cuts = [0, 150, 151, 290, N]                 # uneven parts, one of a single row
        for p, (lo, hi) in enumerate(zip(cuts[:-1], cuts[1:])):
            part = table.slice(lo, hi - lo)
            if p % 2:
                pq.write_table(part, path / f"part-{p}.parquet", row_group_size=50)
            else:
                with pa.ipc.new_file(str(path / f"part-{p}.arrow"), part.schema) as w:
                    w.write_table(part)
        return path
    raise ValueError(fmt)


def cases(fmt: str = "numpy", chunk_rows=None, tmp=None) -> dict:
    """``{case: hash}`` for every path; ``fmt`` is how the pool is handed over."""
    import fastal
    from fastal.models import Committee, LinearHead

    X, logits, probs, members, labeled = pool_arrays()
    rng = np.random.default_rng(7)
    heads = [LinearHead(rng.standard_normal((D, C)), rng.standard_normal(C)) for _ in range(M)]
    own_tmp = None
    if fmt != "numpy" and tmp is None:
        own_tmp = tempfile.TemporaryDirectory()
        tmp = own_tmp.name
    out = {}

    def put(name, sel):
        out[name] = _digest(sel.indices, sel.scores)

    if fmt == "numpy":
        sources = {"probs": (probs, None), "logits": (logits, None), "emb": (X, None),
                   "members": (members, None)}
    else:
        tmp = Path(tmp)
        sources = {
            "probs": (_write(fmt, tmp, "probs", {"p": probs}), "p"),
            "logits": (_write(fmt, tmp, "logits", {"z": logits}), "z"),
            "emb": (_write(fmt, tmp, "emb", {"x": X}), "x"),
            "members": (_write(fmt, tmp, "members", {f"m{i}": members[i] for i in range(M)}),
                        [f"m{i}" for i in range(M)]),
        }
    kw = dict(chunk_rows=chunk_rows)
    for method in fastal.UNCERTAINTY_METHODS:
        for src, from_logits in (("probs", False), ("logits", True)):
            data, col = sources[src]
            put(f"top_k/{method}/{src}", fastal.top_k(data, K, method, from_logits=from_logits,
                                                      column=col, **kw))
            out[f"score/{method}/{src}"] = _digest(
                fastal.score(data, method, from_logits=from_logits, column=col, **kw))
        data, col = sources["emb"]
        put(f"top_k/{method}/head", fastal.top_k(data, K, method, column=col, model=heads[0], **kw))
    for method in ("expected_gradient_length", "expected_gradient_length_bias"):
        data, col = sources["emb"]
        put(f"top_k/{method}/head", fastal.top_k(data, K, method, column=col, model=heads[0], **kw))
    committee = Committee(heads)
    for method in fastal.COMMITTEE_METHODS:
        if method == "committee_std":
            continue
        data, col = sources["members"]
        put(f"top_k/{method}/members", fastal.top_k(data, K, method, column=col, from_logits=True,
                                                    **kw))
        data, col = sources["emb"]
        put(f"top_k/{method}/committee", fastal.top_k(data, K, method, column=col,
                                                      model=committee, **kw))
    emb, col = sources["emb"]
    for name in fastal.STRATEGIES:
        strategy_probs = probs if "probs" in fastal.STRATEGIES[name].needs else None
        data = emb if strategy_probs is not None or name in ("kcenter", "kmeans", "typiclust",
                                                             "random") else sources["probs"][0]
        column = col if data is emb else sources["probs"][1]
        put(f"select/{name}", fastal.select(data, K, name, probs=strategy_probs, labeled=labeled,
                                            seed=3, column=column, **kw))
        put(f"select/{name}/cold", fastal.select(data, K, name, probs=strategy_probs, seed=3,
                                                 column=column, **kw))
    put("kcenter/l2", fastal.kcenter(X, K, labeled=labeled, **kw))
    put("kcenter/cosine", fastal.kcenter(X, K, labeled=labeled, metric="cosine", **kw))
    if own_tmp is not None:
        own_tmp.cleanup()
    return out


if __name__ == "__main__":
    # Run by the determinism test in a subprocess with another OPENBLAS_CORETYPE or Numba
    # CPU target: print the hashes (numpy and parquet inputs) as JSON.
    sys.path.insert(0, os.path.dirname(__file__))
    json.dump({"numpy": cases("numpy"), "parquet": cases("parquet")}, sys.stdout)
