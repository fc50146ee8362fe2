"""Scoring drivers: chunk the data, call the kernels, merge per-chunk top-k candidates.

Data flows one way: ``fastal.io`` source -> chunks -> ``fastal._kernels`` -> this module's
merge -> NumPy result or ``Selection``. Memory is O(chunk + k) for ``top_k``.
"""

from __future__ import annotations

import sys

import numpy as np

from . import committee as _committee
from ._errors import ArgumentError, DataError, FastalError
from ._kernels import uncertainty as _k
from ._selection import Selection
from ._validation import raise_bad_probability_row
from .io import Chunk, Source, as_source

#: Uncertainty methods: one model's class probabilities (or logits) per row.
UNCERTAINTY_METHODS = ("entropy", "least_confidence", "margin", "ratio")
#: Committee methods: several models' outputs per row (see :mod:`fastal.committee`).
COMMITTEE_METHODS = _committee.COMMITTEE_METHODS + _committee.REGRESSION_METHODS
#: Expected model change (see :func:`fastal.committee.egl_chunk`).
EGL_METHODS = _committee.EGL_METHODS
#: Every name accepted by ``method=`` in :func:`score` and :func:`top_k` (plus the aliases
#: ``mutual_information`` for ``bald`` and ``soft_vote_entropy`` for ``consensus_entropy``).
METHODS = UNCERTAINTY_METHODS + COMMITTEE_METHODS + EGL_METHODS

#: Rows of probabilities must sum to 1 within this absolute tolerance and have no entry
#: below ``-PROBABILITY_TOLERANCE``; anything else is rejected (pass logits instead).
from ._config import PROBABILITY_TOLERANCE  # noqa: E402

_CODES = {
    "entropy": _k.ENTROPY,
    "least_confidence": _k.LEAST_CONFIDENCE,
    "margin": _k.MARGIN,
    "ratio": _k.RATIO,
}


def check_method(method) -> str:
    """Return the canonical method name or raise a FastalError listing the valid ones."""
    if isinstance(method, str):
        method = _committee.COMMITTEE_ALIASES.get(method, method)
    if not isinstance(method, str) or method not in METHODS:
        raise ArgumentError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    return method


def _open(data, column, id_column, min_width=2) -> Source:
    source = as_source(data, column=column, id_column=id_column)
    if source.n_rows == 0:
        raise DataError(f"{source.name} is empty: the pool has no rows to score")
    if source.width < min_width:
        raise DataError(
            f"{source.name} must have at least 2 classes per row (rows, classes); "
            f"got {source.width}"
        )
    return source


def _plan(data, method, *, from_logits, column, id_column, model, n_classes, chunk_rows):
    """How to score ``data`` by ``method``: ``(method, source, scorer)``.

    ``scorer(chunk, out)`` fills ``out`` (float32, one per chunk row) and raises a
    FastalError naming the global row on bad values. For in-memory committees the scores
    are computed at once (the members already take M*C times their memory) and returned
    in place of the scorer, with ``source`` None.
    """
    from .io import is_table_or_path

    method = check_method(method)
    if model is not None:
        from .models import check_model_methods, model_chunk_scores

        (method,) = check_model_methods(model, method)
        if from_logits:
            raise ArgumentError("from_logits does not apply with model=: the model computes "
                                "the outputs from the embeddings")
        source = _open(data, column, id_column, min_width=1)

        def scorer(chunk, out):
            model_chunk_scores(model, chunk.values, (method,), out, start=chunk.start,
                               name=source.name)
        return method, source, scorer
    if method in UNCERTAINTY_METHODS:
        source = _open(data, column, id_column)
        if source.n_members > 1:
            raise ArgumentError(
                f"{method} scores one probability vector per row, but {len(column)} list "
                f"columns were named (one per committee member): use a committee method "
                f"such as 'bald' or 'vote_entropy', or name one column")
        code = _CODES[method]

        def scorer(chunk, out):
            _score_chunk(chunk, code, from_logits, out, source.name)
        return method, source, scorer
    if method in EGL_METHODS:
        if method == "expected_gradient_length":
            raise ArgumentError(
                "expected_gradient_length needs the features and the model: pass the "
                "embeddings as data and model=fastal.models.LinearHead(W, b); from "
                "probabilities alone use 'expected_gradient_length_bias'")
        source = _open(data, column, id_column)

        def scorer(chunk, out):
            _committee.egl_chunk(None, chunk.values, out, methods=(method,),
                                 from_logits=from_logits, start=chunk.start, name=source.name)
        return method, source, scorer
    if not is_table_or_path(data):
        if not isinstance(data, (list, tuple)) and method not in _committee.REGRESSION_METHODS:
            from .io import to_numpy

            arr = to_numpy(data, "members")
            if arr.ndim == 2 and (arr.dtype.kind == "f" or method not in _committee.VOTE_METHODS):
                raise DataError(
                    f"{method} needs the outputs of several models: a (members, rows, classes) "
                    f"array or a list of (rows, classes) arrays (or (members, rows) integer "
                    f"votes for vote_entropy / variation_ratio); got a 2-D {arr.dtype} array "
                    f"of shape {arr.shape}")
        scores = _committee.score_committee(data, method, from_logits=from_logits,
                                            chunk_rows=chunk_rows, n_classes=n_classes)
        return method, None, scores
    # Arrow committees: one list column per member, or one scalar column per member for
    # regression committees.
    source = _open(data, column, id_column, min_width=1)
    if method in _committee.REGRESSION_METHODS:
        if source.n_members > 1 or source.width < 2:
            raise ArgumentError(f"{method} reads one float column per member: pass "
                                f"column=['member0', 'member1', ...]")

        def scorer(chunk, out):
            _committee.regression_chunk(chunk.values.T, out, start=chunk.start, name=source.name)
        return method, source, scorer
    if method in _committee.VOTE_METHODS and source.n_members < 2:
        raise ArgumentError(f"{method} from Arrow data reads one list column of class "
                            f"probabilities per member; pass hard votes as an in-memory "
                            f"(members, rows) integer array")
    if source.n_members < 2:
        raise ArgumentError(
            f"committee method {method!r} reads one list column per member from Arrow data: "
            f"pass column=['member0', 'member1', ...] (at least 2)")
    n_members = source.n_members
    n_classes_per = source.width // n_members

    def scorer(chunk, out):
        rows = chunk.values.shape[0]
        members = chunk.values.reshape(rows, n_members, n_classes_per).transpose(1, 0, 2)
        _committee.committee_chunk(members, (method,), from_logits=from_logits, out=out,
                                   start=chunk.start, name=source.name)
    return method, source, scorer


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, unit="rows", unit_scale=True,
                desc=desc, file=sys.stderr, leave=False)


def _score_chunk(chunk: Chunk, code: int, from_logits: bool, out: np.ndarray, name: str):
    """Score one chunk into ``out`` (len == rows); raise a precise error for bad rows."""
    values = chunk.values
    n_bad = _k.uncertainty_scores(values, code, from_logits, PROBABILITY_TOLERANCE, out)
    if n_bad:
        _raise_bad_row(values, out, chunk.start, from_logits, name)


def _raise_bad_row(values, out, start, from_logits, name):
    r = int(np.flatnonzero(np.isnan(out))[0])
    raise_bad_probability_row(values[r], f"row {start + r} of {name}", from_logits)


def score(data, method, *, from_logits=False, column=None, chunk_rows=None, progress=False,
          model=None, n_classes=None, out=None, client=None):
    """Score every row of a pool for uncertainty (higher = more informative).

    Parameters
    ----------
    data : array-like (rows, classes), pyarrow.Table, or path
        Class probabilities (or logits with ``from_logits=True``): a NumPy array or any
        array-like, an Arrow table, or a Parquet / Arrow IPC file or directory of them.
    method : {"entropy", "least_confidence", "margin", "ratio"}
        See Notes for the formulas.
    from_logits : bool, default False
        Treat the rows as unnormalised logits; a stable log-softmax is applied inside the
        kernel (nothing of the pool's size is allocated for it).
    column : str or list of str, optional
        For Arrow data: the list column of probabilities/logits, or one column per class.
    chunk_rows : int, optional
        Rows per chunk (default: about 4 MiB of input per chunk). Results do not depend on it.
    progress : bool, default False
        Show a progress bar on stderr.
    model : LinearHead, Committee or ProbaModel, optional
        Score embeddings through this model (see :mod:`fastal.models`); ``data`` then holds
        the embeddings.
    n_classes : int, optional
        For committees of integer votes: labels lie in [0, n_classes).
    out : ndarray of float32, shape (rows,), optional
        Write the scores here instead of a new array (saves the allocation and the page
        faults of a fresh output when scoring repeatedly).
    client : dask.distributed.Client, optional
        Score on a Dask cluster (see :mod:`fastal.distributed`); ``data`` may then also be
        a list of files, a dask array or dataframe. The scores are identical.

    Returns
    -------
    scores : ndarray of float32, shape (rows,)
        ``out`` when given.

    Raises
    ------
    FastalError
        Unknown method; data that is not 2-D, has fewer than 2 classes, no rows, or a
        non-numeric dtype; a missing or mistyped column; NaN or inf values; probabilities
        that are negative or whose rows do not sum to 1 within ``PROBABILITY_TOLERANCE``.

    Notes
    -----
    With p the row's probabilities sorted so that p_(1) >= p_(2) >= ...:

    - entropy: H(p) = -sum_j p_j log p_j (natural log; 0 log 0 = 0), in [0, log C];
    - least_confidence: 1 - p_(1), in [0, 1 - 1/C];
    - margin: 1 - (p_(1) - p_(2)), in [0, 1] (Scheffer et al., 2001);
    - ratio: p_(2) / p_(1), in [0, 1] (ratio of confidences).

    Examples
    --------
    >>> import numpy as np, fastal
    >>> probs = np.array([[0.75, 0.25], [0.5, 0.5]], dtype=np.float32)
    >>> fastal.score(probs, "margin")
    array([0.5, 1. ], dtype=float32)
    """
    if client is not None:
        from .distributed import score as distributed_score

        return distributed_score(data, method, client=client, from_logits=from_logits,
                                 column=column, chunk_rows=chunk_rows, progress=progress,
                                 model=model, n_classes=n_classes, out=out)
    method, source, scorer = _plan(data, method, from_logits=from_logits, column=column,
                                   id_column=None, model=model, n_classes=n_classes,
                                   chunk_rows=chunk_rows)
    if source is None:
        if out is not None:
            _check_out(out, scorer.shape[0])
            out[:] = scorer
            return out
        return scorer
    if out is None:
        out = np.empty(source.n_rows, dtype=np.float32)
    else:
        _check_out(out, source.n_rows)
    with _progress(source.n_rows, progress, f"scoring ({method})") as bar:
        for chunk in source.chunks(chunk_rows):
            scorer(chunk, out[chunk.start:chunk.stop])
            bar.update(chunk.values.shape[0])
    return out


def _check_out(out, n_rows):
    if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != (n_rows,) \
            or not out.flags.c_contiguous or not out.flags.writeable:
        what = (f"{out.dtype} array of shape {out.shape}" if isinstance(out, np.ndarray)
                else type(out).__name__)
        raise ArgumentError(f"out must be a writeable contiguous float32 array of shape "
                            f"({n_rows},); got {what}")


class TopK:
    """The k best (score, row) pairs seen so far; ties go to the lower row position.

    Each chunk is filtered against the current k-th best score before anything is copied,
    so after the first chunks only a few candidates per chunk survive; the merge is a
    partition plus a sort of at most a few times k rows. The result is the same for any
    chunking because the order (-score, row) is total.
    """

    def __init__(self, k: int):
        self.k = k
        self.scores = np.empty(0, dtype=np.float32)
        self.rows = np.empty(0, dtype=np.int64)
        self.ids = None

    def push(self, scores: np.ndarray, start: int, ids=None):
        if self.rows.shape[0] >= self.k:
            # A later row must beat the k-th best strictly: on a tie the held row is lower.
            keep = np.flatnonzero(scores > self.scores[-1])
        else:
            keep = np.arange(scores.shape[0])
        if keep.size == 0:
            return
        scores_all = np.concatenate([self.scores, scores[keep]])
        rows_all = np.concatenate([self.rows, start + keep])
        ids_all = None
        if ids is not None:
            held = self.ids if self.ids is not None else ids[:0]
            ids_all = np.concatenate([held, ids[keep]])
        if scores_all.shape[0] > self.k:
            # Keep every row scoring at least the k-th largest value, then order exactly.
            kth = np.partition(scores_all, scores_all.shape[0] - self.k)[scores_all.shape[0] - self.k]
            sel = np.flatnonzero(scores_all >= kth)
        else:
            sel = np.arange(scores_all.shape[0])
        order = sel[np.lexsort((rows_all[sel], -scores_all[sel]))][: self.k]
        self.scores = scores_all[order]
        self.rows = rows_all[order]
        if ids_all is not None:
            self.ids = ids_all[order]


def check_k(k, n_rows: int, name: str) -> int:
    """Validate a batch size against the pool size."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ArgumentError(f"k must be a positive integer; got {k!r}")
    if k < 1:
        raise ArgumentError(f"k must be >= 1; got {k}")
    if k > n_rows:
        raise ArgumentError(f"k={k} is larger than the pool ({name} has {n_rows} rows)")
    return int(k)


def top_k(data, k, method, *, from_logits=False, column=None, id_column=None,
          chunk_rows=None, progress=False, model=None, n_classes=None, client=None):
    """The k most informative rows of a pool, in bounded memory.

    Scores are computed chunk by chunk and only the best candidates are kept, so memory is
    O(chunk_rows + k) whatever the pool size; the full score vector is never held.

    Parameters
    ----------
    data : array-like (rows, classes), pyarrow.Table, or path
        As in :func:`score`.
    k : int
        Number of rows to return, 1 <= k <= rows.
    method : {"entropy", "least_confidence", "margin", "ratio"}
        See :func:`score`.
    from_logits : bool, default False
        Treat the rows as logits.
    column : str or list of str, optional
        For Arrow data: the probability/logit column(s).
    id_column : str, optional
        For Arrow data: an integer or string column whose values are returned as ``ids``.
    chunk_rows : int, optional
        Rows per chunk. The result does not depend on it.
    progress : bool, default False
        Show a progress bar on stderr.
    client : dask.distributed.Client, optional
        Run on a Dask cluster (see :mod:`fastal.distributed`): each partition is scored on
        a worker and only its k best rows come back. The result is identical.

    Returns
    -------
    Selection
        ``indices`` (int64 global row positions), ``scores`` (float32) and ``ids`` (when
        ``id_column`` is given), most informative first; equal scores are ordered by row.

    Raises
    ------
    FastalError
        As :func:`score`, plus k < 1, k larger than the pool, or a missing id column.

    Examples
    --------
    >>> import numpy as np, fastal
    >>> probs = np.array([[0.9, 0.1], [0.5, 0.5], [0.6, 0.4]], dtype=np.float32)
    >>> fastal.top_k(probs, 2, "margin").indices
    array([1, 2])
    """
    if client is not None:
        from .distributed import top_k as distributed_top_k

        return distributed_top_k(data, k, method, client=client, from_logits=from_logits,
                                 column=column, id_column=id_column, chunk_rows=chunk_rows,
                                 progress=progress, model=model, n_classes=n_classes)
    method, source, scorer = _plan(data, method, from_logits=from_logits, column=column,
                                   id_column=id_column, model=model, n_classes=n_classes,
                                   chunk_rows=chunk_rows)
    if source is None:  # an in-memory committee, already scored
        k = check_k(k, scorer.shape[0], "members")
        best = TopK(k)
        best.push(scorer, 0)
        return Selection(indices=best.rows, scores=best.scores, method=method,
                         n_pool=scorer.shape[0])
    k = check_k(k, source.n_rows, source.name)
    best = TopK(k)
    buffer = None
    with _progress(source.n_rows, progress, f"top-{k} ({method})") as bar:
        for chunk in source.chunks(chunk_rows):
            rows = chunk.values.shape[0]
            if buffer is None or buffer.shape[0] < rows:
                buffer = np.empty(rows, dtype=np.float32)
            out = buffer[:rows]
            scorer(chunk, out)
            best.push(out, chunk.start, chunk.ids)
            bar.update(rows)
    return Selection(indices=best.rows, scores=best.scores, ids=best.ids,
                     method=method, n_pool=source.n_rows)
