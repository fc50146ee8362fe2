"""One round's batch: the model's outputs joined to the pool by id, scored, picked.

Two ways to run a strategy, chosen by what it needs:

- **streamed** (the uncertainty strategies and ``uncertain_kcenter``): the outputs are read
  chunk by chunk, scored by the uncertainty kernels and only the best candidates are kept;
  ``uncertain_kcenter`` then reads the embeddings of its beta*k candidates and of the
  excluded rows (its centres) in one more pass. Memory is O(chunk + candidates + excluded),
  whatever the pool's size.
- **in memory** (every other strategy): the embeddings and/or probabilities are read whole
  and handed to :func:`fastal.select`. ``fastal select --dry-run`` says how much that takes.

Both give exactly what :func:`fastal.select` gives on the same arrays with
``labeled=`` the excluded rows (labeled, pending and skipped ids) and the round's seed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._errors import ArgumentError, DataError, FileError
from ..io import Chunk, as_source
from . import _pool

STREAMED = ("entropy", "least_confidence", "margin", "ratio", "uncertain_kcenter")
_HIST_BINS = 40


@dataclass
class Inputs:
    """Everything a round reads, resolved and checked (no values read yet)."""

    pool: str
    id_column: str
    strategy: str
    options: dict
    k: int
    seed: int
    n_pool: int
    needs: tuple
    embedding_column: str | None = None
    probs_from: str | None = None          # "pool", "outputs", "head" or None
    probs_column: str | None = None        # in the pool or the outputs file
    from_logits: bool = False
    outputs: str | None = None
    outputs_id_column: str | None = None
    head: object = None
    head_path: str | None = None
    chunk_rows: int | None = None
    width: int = 0                          # embedding dimension d
    n_classes: int = 0                      # C
    classes: list | None = None

    @property
    def streamed(self) -> bool:
        return self.strategy in STREAMED

    @property
    def method(self) -> str | None:
        """The uncertainty method that ranks rows (and fills the score histogram)."""
        if self.strategy in STREAMED[:4]:
            return self.strategy
        if self.probs_from is None:
            return None
        return self.options.get("method", "margin")


@dataclass
class Batch:
    positions: np.ndarray                  # int64 pool positions, in pick order
    scores: np.ndarray                     # the strategy's criterion
    uncertainty: np.ndarray                # the method's score (NaN without outputs)
    predicted: np.ndarray                  # int64 class index (-1 without outputs)
    confidence: np.ndarray                 # probability of the predicted class
    histogram: dict | None = None
    phases: dict = field(default_factory=dict)


def _top_class(values: np.ndarray, from_logits: bool):
    """Argmax class and its probability per row (softmax for logits)."""
    top = np.argmax(values, axis=1)
    best = values[np.arange(values.shape[0]), top].astype(np.float64)
    if from_logits:
        z = values.astype(np.float64) - best[:, None]
        best = 1.0 / np.exp(z).sum(axis=1)
    return top.astype(np.int64), best


class _Best:
    """The best ``n`` rows seen, ordered (-score, position) as ``TopK``; with each its guess."""

    def __init__(self, n: int):
        self.n = n
        self.scores = np.empty(0, dtype=np.float32)
        self.positions = np.empty(0, dtype=np.int64)
        self.predicted = np.empty(0, dtype=np.int64)
        self.confidence = np.empty(0, dtype=np.float64)

    def push(self, scores: np.ndarray, positions: np.ndarray, guesses) -> None:
        """Merge one chunk; ``guesses(rows)`` gives (class, probability) of the kept rows."""
        if self.positions.size >= self.n:
            # Ties with the n-th best are kept: the lower position may win them.
            keep = np.flatnonzero(scores >= self.scores[-1])
        else:
            keep = np.arange(scores.size)
        if keep.size == 0:
            return
        top, prob = guesses(keep)
        s = np.concatenate([self.scores, scores[keep]])
        p = np.concatenate([self.positions, positions[keep]])
        order = np.lexsort((p, -s))[: self.n]
        self.scores, self.positions = s[order], p[order]
        self.predicted = np.concatenate([self.predicted, top])[order]
        self.confidence = np.concatenate([self.confidence, prob])[order]


def _histogram_edges(method: str, n_classes: int) -> np.ndarray:
    upper = math.log(n_classes) if method == "entropy" else 1.0
    return np.linspace(0.0, upper, _HIST_BINS + 1)


def join_positions(inputs: Inputs, pool_ids: pa.ChunkedArray) -> np.ndarray | None:
    """Pool position of each outputs row, or None when the outputs are in pool order.

    Refuses outputs whose ids miss pool ids, are not in the pool, or repeat, listing a few.
    """
    out_ids = _pool.read_ids(inputs.outputs, inputs.outputs_id_column, "outputs")
    if out_ids.type != pool_ids.type:
        raise DataError(f"outputs id column {inputs.outputs_id_column!r} holds "
                        f"{'integers' if pa.types.is_integer(out_ids.type) else 'strings'} "
                        f"but the pool's ids are "
                        f"{'integers' if pa.types.is_integer(pool_ids.type) else 'strings'}")
    if out_ids.null_count:
        raise DataError(f"outputs {inputs.outputs} have {out_ids.null_count} null id(s) in "
                        f"column {inputs.outputs_id_column!r}")
    if len(out_ids) == len(pool_ids) and out_ids.equals(pool_ids):
        return None
    positions = pc.index_in(out_ids, value_set=pool_ids)
    if positions.null_count:
        unknown = pc.filter(out_ids, positions.is_null())
        raise DataError(f"outputs {inputs.outputs} carry {len(unknown)} id(s) that are not in "
                        f"the pool (e.g. {_few(unknown)}): were they written for another pool?")
    pos = positions.to_numpy(zero_copy_only=False).astype(np.int64)
    counts = np.bincount(pos, minlength=len(pool_ids))
    if (counts > 1).any():
        rows = np.flatnonzero(counts > 1)
        raise DataError(f"outputs {inputs.outputs} repeat {rows.size} id(s) (e.g. "
                        f"{_few(pool_ids.take(pa.array(rows[:5])))}); one row per pool id")
    if (counts == 0).any():
        rows = np.flatnonzero(counts == 0)
        raise DataError(f"outputs {inputs.outputs} miss {rows.size} of the pool's "
                        f"{len(pool_ids)} ids (e.g. {_few(pool_ids.take(pa.array(rows[:5])))}); "
                        f"write the model's outputs for every pool row")
    return pos


def _few(values, n=5) -> str:
    return ", ".join(repr(v) for v in values[:n].to_pylist())


def _prob_source(inputs: Inputs):
    if inputs.probs_from == "pool":
        return as_source(inputs.pool, column=inputs.probs_column, what="pool")
    if inputs.probs_from == "outputs":
        return as_source(inputs.outputs, column=inputs.probs_column, what="outputs")
    return as_source(inputs.pool, column=inputs.embedding_column, what="pool")


def prob_chunks(inputs: Inputs, positions: np.ndarray | None, bar=None):
    """Yield (chunk with values as probabilities or logits, pool positions, from_logits)."""
    source = _prob_source(inputs)
    if inputs.probs_from == "outputs" and source.n_rows != (
            inputs.n_pool if positions is None else positions.size):
        raise DataError(f"outputs {inputs.outputs} have {source.n_rows} rows of values but "
                        f"{inputs.n_pool if positions is None else positions.size} ids")
    for chunk in source.chunks(inputs.chunk_rows):
        rows = chunk.values.shape[0]
        pos = (np.arange(chunk.start, chunk.stop, dtype=np.int64) if positions is None
               else positions[chunk.start:chunk.stop])
        if inputs.probs_from == "head":
            logits = inputs.head.logits(chunk.values)
            yield Chunk(chunk.start, logits), pos, True
        else:
            yield chunk, pos, inputs.from_logits
        if bar is not None:
            bar.update(rows)


def _score(chunk: Chunk, method: str, from_logits: bool, out: np.ndarray, name: str):
    from ..scoring import _CODES, _score_chunk

    _score_chunk(chunk, _CODES[method], from_logits, out, name)


def _check_width(width: int, inputs: Inputs):
    if width < 2:
        raise DataError(f"the model outputs must have at least 2 classes per row; got {width}")
    if inputs.classes is not None and len(inputs.classes) != width:
        raise DataError(f"the project has {len(inputs.classes)} classes "
                        f"({', '.join(inputs.classes[:5])}...) but the model outputs have "
                        f"{width} columns")


def streamed(inputs: Inputs, excluded: np.ndarray, positions, progress) -> Batch:
    """Uncertainty top-k or uncertain_kcenter, O(chunk + candidates) memory."""
    from ..diversity.kcenter import kcenter

    phases = {}
    method = inputs.method
    n_eligible = int(inputs.n_pool - excluded.sum())
    if inputs.strategy == "uncertain_kcenter":
        beta = inputs.options.get("beta", 10)
        if not isinstance(beta, (int, float)) or isinstance(beta, bool) or beta < 1:
            raise ArgumentError(f"option beta must be a number >= 1; got {beta!r}")
        n_candidates = min(n_eligible, max(inputs.k, int(np.ceil(beta * inputs.k))))
    else:
        n_candidates = inputs.k
    best = _Best(n_candidates)
    edges = None
    counts = None
    buffer = None
    t0 = time.perf_counter()
    with progress(inputs.n_pool, f"scoring ({method})") as bar:
        for chunk, pos, from_logits in prob_chunks(inputs, positions, bar):
            rows = chunk.values.shape[0]
            _check_width(chunk.values.shape[1], inputs)
            if buffer is None or buffer.shape[0] < rows:
                buffer = np.empty(rows, dtype=np.float32)
            out = buffer[:rows]
            _score(chunk, method, from_logits, out,
                   inputs.outputs if inputs.probs_from == "outputs" else inputs.pool)
            eligible = np.flatnonzero(~excluded[pos])
            if edges is None:
                edges = _histogram_edges(method, chunk.values.shape[1])
                counts = np.zeros(_HIST_BINS, dtype=np.int64)
            scores = out[eligible]
            counts += np.histogram(np.clip(scores, edges[0], edges[-1]), edges)[0]
            values = chunk.values
            best.push(scores, pos[eligible],
                      lambda keep: _top_class(values[eligible[keep]], from_logits))
    phases["score"] = time.perf_counter() - t0
    cand_pos, cand_scores = best.positions, best.scores
    predicted, confidence = best.predicted, best.confidence
    histogram = {"method": method, "edges": edges.tolist(), "counts": counts.tolist()}
    if inputs.strategy != "uncertain_kcenter":
        return Batch(cand_pos, cand_scores.astype(np.float64), cand_scores.astype(np.float64),
                     predicted, confidence, histogram, phases)
    t0 = time.perf_counter()
    order = np.argsort(cand_pos, kind="stable")
    sorted_pos = cand_pos[order]
    excluded_pos = np.flatnonzero(excluded)
    X_cand, X_excl = _gather_embeddings(inputs, sorted_pos, excluded_pos, progress)
    phases["read candidates"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    inner = kcenter(X_cand, inputs.k, labeled=X_excl if excluded_pos.size else None,
                    metric=inputs.options.get("metric", "l2"), seed=inputs.seed)
    phases["select"] = time.perf_counter() - t0
    picks = inner.indices
    return Batch(sorted_pos[picks], inner.scores.astype(np.float64),
                 cand_scores[order][picks].astype(np.float64), predicted[order][picks],
                 confidence[order][picks], histogram, phases)


def _gather_embeddings(inputs: Inputs, cand_pos, excluded_pos, progress):
    """Embeddings of the (sorted) candidate and excluded positions, in one pass."""
    source = as_source(inputs.pool, column=inputs.embedding_column, what="pool")
    X_cand = np.empty((cand_pos.size, source.width), dtype=source.dtype)
    X_excl = np.empty((excluded_pos.size, source.width), dtype=source.dtype)
    lo_c = lo_e = 0
    with progress(source.n_rows, "reading embeddings") as bar:
        for chunk in source.chunks(inputs.chunk_rows):
            hi_c = int(np.searchsorted(cand_pos, chunk.stop))
            hi_e = int(np.searchsorted(excluded_pos, chunk.stop))
            if hi_c > lo_c:
                X_cand[lo_c:hi_c] = chunk.values[cand_pos[lo_c:hi_c] - chunk.start]
            if hi_e > lo_e:
                X_excl[lo_e:hi_e] = chunk.values[excluded_pos[lo_e:hi_e] - chunk.start]
            lo_c, lo_e = hi_c, hi_e
            bar.update(chunk.values.shape[0])
            if lo_c == cand_pos.size and lo_e == excluded_pos.size:
                break
    return X_cand, X_excl


def in_memory(inputs: Inputs, excluded: np.ndarray, positions, progress) -> Batch:
    """Any registered strategy on whole arrays through :func:`fastal.select`."""
    from ..scoring import score
    from ..select import select

    phases = {}
    t0 = time.perf_counter()
    probs = None
    from_logits = inputs.from_logits
    if inputs.probs_from is not None and "probs" in inputs.needs:
        probs = None
        with progress(inputs.n_pool, "reading outputs") as bar:
            for chunk, pos, chunk_logits in prob_chunks(inputs, positions, bar):
                _check_width(chunk.values.shape[1], inputs)
                if probs is None:
                    probs = np.empty((inputs.n_pool, chunk.values.shape[1]),
                                     dtype=chunk.values.dtype)
                probs[pos] = chunk.values
                from_logits = chunk_logits
    embeddings = None
    if "embeddings" in inputs.needs:
        source = as_source(inputs.pool, column=inputs.embedding_column, what="pool")
        embeddings = source.read_all(inputs.chunk_rows)
    phases["read"] = time.perf_counter() - t0
    if embeddings is not None:
        data, extra_probs = embeddings, probs
    elif probs is not None:
        data, extra_probs = probs, None
    else:
        data, extra_probs = np.empty((inputs.n_pool, 0), dtype=np.float32), None
    t0 = time.perf_counter()
    options = {k: v for k, v in inputs.options.items()}
    sel = select(data, inputs.k, inputs.strategy, probs=extra_probs,
                 labeled=np.flatnonzero(excluded), seed=inputs.seed, from_logits=from_logits,
                 chunk_rows=inputs.chunk_rows, **options)
    phases["select"] = time.perf_counter() - t0
    picks = np.asarray(sel.indices, dtype=np.int64)
    k = picks.size
    uncertainty = np.full(k, np.nan)
    predicted = np.full(k, -1, dtype=np.int64)
    confidence = np.full(k, np.nan)
    histogram = None
    if probs is None and inputs.probs_from is not None:
        # The strategy does not read the outputs, but the batch files still show the
        # model's guess, and the plot the batch against the pool.
        probs = np.empty(0)
        with progress(inputs.n_pool, "reading outputs") as bar:
            for chunk, pos, chunk_logits in prob_chunks(inputs, positions, bar):
                if probs.size == 0:
                    probs = np.empty((inputs.n_pool, chunk.values.shape[1]), chunk.values.dtype)
                probs[pos] = chunk.values
                from_logits = chunk_logits
    if probs is not None:
        method = inputs.method
        all_scores = score(probs, method, from_logits=from_logits)
        uncertainty = all_scores[picks].astype(np.float64)
        predicted, confidence = _top_class(probs[picks], from_logits)
        edges = _histogram_edges(method, probs.shape[1])
        counts = np.histogram(np.clip(all_scores[~excluded], edges[0], edges[-1]), edges)[0]
        histogram = {"method": method, "edges": edges.tolist(), "counts": counts.tolist()}
    return Batch(picks, np.asarray(sel.scores, dtype=np.float64), uncertainty, predicted,
                 confidence, histogram, phases)


def run(inputs: Inputs, excluded: np.ndarray, positions, progress) -> Batch:
    if inputs.streamed:
        return streamed(inputs, excluded, positions, progress)
    return in_memory(inputs, excluded, positions, progress)


# -- the estimate ----------------------------------------------------------------------

#: Throughputs measured on the 2-core machine of the benchmark (bench/README.md: 5.1 GB of
#: embeddings decoded in 35 s), scoring, k-center picks. Meant to be within 2x.
_DECODE_BYTES_PER_S = 150e6
_SCORE_ROWS_PER_S = 30e6
_KCENTER_ROW_PICKS_PER_S = 400e6


def estimate(inputs: Inputs, n_excluded: int, id_bytes: int, baseline: int,
             joined: bool, row_group_bytes: int = 0) -> dict:
    """Peak memory (bytes) and time (s) of a round, from its sizes alone.

    ``baseline`` is the resident memory of the process before it reads anything (the
    interpreter, NumPy, Arrow, Numba, FAISS); ``id_bytes`` the pool's id column in memory.
    """
    n, d, C, k = inputs.n_pool, inputs.width, max(inputs.n_classes, 2), inputs.k
    itemsize = 4
    chunk_rows = inputs.chunk_rows or max(1024, (4 << 20) // max(1, (C if inputs.streamed else d) * itemsize))
    parts = {"baseline (interpreter, libraries)": baseline,
             "pool ids, excluded mask": id_bytes + n}
    if joined:
        parts["outputs ids and the join"] = 2 * id_bytes + 8 * n
    if row_group_bytes:
        # The Parquet reader holds a row group's column chunk, compressed and decoded.
        parts["Parquet row group buffers"] = 2 * row_group_bytes
    seconds = n * 8 / _DECODE_BYTES_PER_S + (2 * n * 8 / _DECODE_BYTES_PER_S if joined else 0)
    if inputs.streamed:
        parts["chunk buffers"] = 4 * chunk_rows * max(C, 1) * itemsize + (8 << 20)
        seconds += n * C * itemsize / _DECODE_BYTES_PER_S + n / _SCORE_ROWS_PER_S
        if inputs.strategy == "uncertain_kcenter":
            beta = inputs.options.get("beta", 10)
            cand = min(n - n_excluded, max(k, int(math.ceil(beta * k))))
            emb_chunk = max(1024, (4 << 20) // max(1, d * itemsize))
            parts["candidates and centres"] = (cand + n_excluded) * d * itemsize \
                + 4 * emb_chunk * d * itemsize + 16 * (cand + n_excluded)
            seconds += n * d * itemsize / _DECODE_BYTES_PER_S \
                + cand * k / _KCENTER_ROW_PICKS_PER_S * max(1, d / 32)
    else:
        if "probs" in inputs.needs or inputs.probs_from is not None:
            parts["probabilities (whole pool)"] = n * C * itemsize + n * 4
            seconds += n * C * itemsize / _DECODE_BYTES_PER_S + n / _SCORE_ROWS_PER_S
        if "embeddings" in inputs.needs:
            parts["embeddings (whole pool)"] = n * d * itemsize
            seconds += n * d * itemsize / _DECODE_BYTES_PER_S
            if inputs.strategy in ("kcenter", "weighted_kcenter"):
                parts["k-center scratch"] = 16 * n
                seconds += n * k / _KCENTER_ROW_PICKS_PER_S * max(1, d / 32)
            elif inputs.strategy in ("badge", "cluster_margin", "kmeans", "typiclust"):
                parts["strategy scratch (rough)"] = n * (d + C) * itemsize
                seconds += n * k * d / 2e9
        parts["unlabeled positions"] = 8 * n
    parts["batch"] = 200 * k
    return {"bytes": int(sum(parts.values())), "seconds": seconds, "parts": parts}
