"""Small generated pools for the project tests (string or integer ids, embeddings, outputs)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def list_column(values: np.ndarray) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), values.shape[1])


def make_pool(path, n=2000, d=8, c=3, *, seed=0, int_ids=False, row_group=700):
    """A Parquet pool: id, emb (d floats), probs (c), text. Returns (ids, emb, probs)."""
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, d)).astype(np.float32)
    probs = rng.dirichlet(np.ones(c), n).astype(np.float32)
    ids = list(range(1000, 1000 + n)) if int_ids else [f"row-{i:05d}" for i in range(n)]
    table = pa.table({"id": ids, "emb": list_column(emb), "probs": list_column(probs),
                      "text": [f"text of row {i}" for i in range(n)]})
    pq.write_table(table, path, row_group_size=row_group)
    return ids, emb, probs


def write_outputs(path, ids, probs, *, seed=None, column="probs"):
    """Model outputs keyed by id, in a shuffled order when ``seed`` is given."""
    order = np.arange(len(ids)) if seed is None else np.random.default_rng(seed).permutation(len(ids))
    pq.write_table(pa.table({"id": [ids[i] for i in order],
                             column: list_column(np.ascontiguousarray(probs[order]))}), path)
    return path


def write_labels(path, ids, labels, annotators=None):
    cols = {"id": ids, "label": labels}
    if annotators is not None:
        cols["annotator"] = annotators
    import pyarrow.csv as pacsv
    pacsv.write_csv(pa.table(cols), path)
    return path
