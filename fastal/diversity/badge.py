"""BADGE: k-means++ seeding on gradient embeddings, without forming them.

Also home of the input checks shared by the diversity strategies of this package
(``clustering``, ``coldstart``): pool embeddings, probabilities, labeled positions, ``k``.
"""

from __future__ import annotations

import numpy as np

from .._config import CHUNK_BYTES, MIN_CHUNK_ROWS, PROBABILITY_TOLERANCE
from .._compiled import compiled
from .._errors import DataError
from .._kernels import badge as _k
from .._selection import Selection
from .._validation import (as_embeddings, as_probs, check_finite, check_int, check_k,
                           check_l2_range, make_rng, parse_labeled)

# Cold processes: while the gang kernel of the later picks (``_k.picks``, 1.6-1.7 s to
# compile beyond the step-by-step kernels, its dense sweep included) is neither compiled in
# this process nor in Numba's cache, picks are made one Python step at a time (~0.1 ms more
# per pick on 2 threads: the threads' hand-off), until this many have been made so in the
# process (so about the compile time); then the gang is compiled (the ski-rental rule, as
# k-center's cold rule). The same picks either way; ``fastal warmup`` compiles the gang.
_COLD_PICKS = 16_000
_cold_picks = [0]

#: Rows of ``probs`` must sum to 1 within this tolerance, with no entry below its negative.


def badge(X, probs, k, *, labeled=None, seed=0, chunk_rows=None):
    """Pick ``k`` pool rows by BADGE: k-means++ seeding on gradient embeddings.

    Parameters
    ----------
    X : array-like of shape (N, d)
        Pool embeddings (the input of the model's last linear layer). float32 and float64
        are used as given (no copy when C-contiguous); other real dtypes become float32.
        Must be finite.
    probs : array-like of shape (N, C)
        Predicted class probabilities of the pool rows, float32 or float64 (others become
        float32). Finite, no entry below ``-1e-3``, each row summing to 1 within ``1e-3``.
    k : int
        Number of rows to pick, ``1 <= k <=`` number of unlabeled rows.
    labeled : array-like of int of shape (L,) or bool of shape (N,), optional
        Pool positions (or a mask) of rows that are already labeled. They are never picked
        and, as in BADGE, are not centres: the seeding runs on the unlabeled rows only.
        Repeats are allowed.
    seed : int, numpy.random.Generator or None
        Source of the k-means++ draws, through ``numpy.random.default_rng(seed)``.
    chunk_rows : int, optional
        Rows per parallel task of the per-pick pass (rounded up to a multiple of 4096; a
        pool of fewer than 16 such tasks is split into smaller ones, multiples of 1,024
        rows). Only affects speed; the picks do not depend on it or on the thread count.

    Returns
    -------
    Selection
        ``indices`` (k,) int64 in pick order; ``scores`` (k,) float32: for the first pick
        its squared gradient norm ``||g||^2``, for later picks their ``D^2`` (squared
        gradient distance to the nearest earlier pick) when drawn, 0 for uniform
        fall-back picks; ``method="badge"``; ``n_pool=N``; ``extra["probability"]`` (k,)
        float64, the probability with which each pick was drawn (1.0 for the first);
        ``extra["n_uniform"]``, the number of uniform fall-back picks.

    Raises
    ------
    FastalError
        ``X`` or ``probs`` not 2-D, non-numeric, empty or with NaN/inf; row counts that
        differ; ``probs`` rows that are not probability vectors; ``labeled`` positions out
        of range or a mask of the wrong length; ``k`` not an integer in
        ``[1, n_unlabeled]``; bad ``chunk_rows``.

    Notes
    -----
    With ``yhat_i = argmax_j p_ij`` (ties to the lowest class) and ``p~_i = p_i - e_yhat_i``,
    the gradient embedding of the cross-entropy loss w.r.t. the last layer's weights, at the
    pseudo-label, is ``g_i = p~_i (x) x_i`` (C*d values). Only inner products are needed:

    ``||g_i||^2 = ||p~_i||^2 ||x_i||^2``, ``<g_i, g_j> = <p~_i, p~_j> <x_i, x_j>``.

    Distances to a new centre c are evaluated in the equivalent, cancellation-free form
    ``||p~_i||^2 ||x_i - x_c||^2 + ||p~_i - p~_c||^2 ||x_c||^2
    + 2 <p~_i, p~_i - p~_c> <x_i - x_c, x_c>`` in float64, so exact duplicates are at
    distance exactly 0; negative rounding residue is clamped at 0. Each pick costs one
    parallel pass over ``probs`` (O(N C)) and over the rows of ``X`` whose distance is not
    ruled out by a Cauchy-Schwarz bound: first their dot product with the centre in the
    pool's dtype (vectorised, with a rigorous error bound), then the exact float64 formula
    only for the rows whose distance can still drop. Extra memory is
    O(N): about 34 bytes per row (float64 ``D^2``, ``||p~||^2``, ``||x||^2``, int32 class,
    uint8 status), 8 more while the first centre is chosen; nothing of size N x (C d) or
    N x k is formed. Inputs are not copied when float32/float64 and C-contiguous.

    Seeding (k-means++, Arthur & Vassilvitskii 2007, as used by BADGE):

    1. the first centre is the unlabeled row with the largest ``||g||`` (ties to the lower
       row), as in the authors' reference implementation (the paper samples it uniformly);
    2. every later centre is drawn with probability ``D^2(i) / sum D^2`` over unlabeled,
       unpicked rows, ``D^2(i)`` being the squared distance to the nearest chosen centre
       (picked and labeled rows have probability 0). One ``u = rng.random()`` per draw;
       the row is the first whose cumulative float64 ``D^2`` exceeds ``u * sum``, with
       sums taken left to right over fixed blocks of 4096 rows (see
       ``fastal._kernels.badge.sample_row`` for the exact definition);
    3. if every remaining ``D^2`` is 0 (duplicates, or zero gradients from one-hot
       probabilities), the same ``u`` picks uniformly: the ``floor(u m)``-th of the ``m``
       remaining unlabeled rows in index order. So ``k`` distinct rows are always returned.

    The picks equal those of the plain NumPy loop over explicit gradient embeddings
    (``tests/reference_badge.py``) for the same seed, up to float64 rounding in ``D^2``.

    References
    ----------
    J. T. Ash, C. Zhang, A. Krishnamurthy, J. Langford and A. Agarwal, "Deep Batch Active
    Learning by Diverse, Uncertain Gradient Lower Bounds", ICLR 2020.

    D. Arthur and S. Vassilvitskii, "k-means++: The Advantages of Careful Seeding",
    SODA 2007.

    Examples
    --------
    >>> import numpy as np
    >>> from fastal.diversity.badge import badge
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [2.0, 2.0]], dtype=np.float32)
    >>> probs = np.array([[0.5, 0.5], [0.9, 0.1], [0.5, 0.5], [0.6, 0.4]], dtype=np.float32)
    >>> sel = badge(X, probs, 2, labeled=[0], seed=0)
    >>> sel.indices.tolist()
    [3, 2]
    >>> round(float(sel.scores[0]), 4)  # ||g||^2 = ||(-0.4, 0.4)||^2 * ||(2, 2)||^2
    2.56
    """
    return _badge(X, probs, k, labeled=labeled, seed=seed, chunk_rows=chunk_rows)


def _badge(X, probs, k, *, labeled=None, seed=0, chunk_rows=None, gang=None):
    """``badge``; ``gang`` True / False: the later picks in the gang kernel / step by step
    (None: by the cold rule, ``_COLD_PICKS``)."""
    pool = as_embeddings(X, "X")
    n_pool, d = pool.shape
    proba = as_probs(probs, n_pool)
    positions = parse_labeled(labeled, n_pool)
    n_unlabeled = n_pool - positions.size
    k = check_k(k, n_unlabeled, n_pool)
    if chunk_rows is None:
        chunk = max(MIN_CHUNK_ROWS, CHUNK_BYTES // ((d + proba.shape[1]) * pool.dtype.itemsize))
    else:
        chunk = check_int(chunk_rows, "chunk_rows", 1)
    blocks_per_task = max(1, -(-chunk // _k.SAMPLING_BLOCK))
    rng = make_rng(seed)
    # squared gradient distances are at most 8 max|x|^2 <= 8 d max|value|^2, and are reported
    # as float32 scores
    check_l2_range(check_finite(pool, "X", chunk), d, "X")

    yhat = np.empty(n_pool, dtype=np.int32)
    pnorm2 = np.empty(n_pool, dtype=np.float64)
    xnorm2 = np.empty(n_pool, dtype=np.float64)
    bad = np.empty(n_pool, dtype=np.uint8)
    if _k.row_stats(pool, proba, PROBABILITY_TOLERANCE, yhat, pnorm2, xnorm2, bad):
        row = int(np.flatnonzero(bad)[0])
        if bad[row] == 1:
            raise DataError(f"X must be finite; row {row} contains NaN or inf "
                            "(or its squared norm overflows float64)")
        raise DataError(f"probs row {row} is not a probability vector (NaN/inf, an entry "
                        f"below -{PROBABILITY_TOLERANCE} or a sum off 1 by more than "
                        f"{PROBABILITY_TOLERANCE}): {proba[row].tolist()}")
    del bad

    status = np.full(n_pool, _k.CANDIDATE, dtype=np.uint8)
    mindist = np.full(n_pool, np.inf, dtype=np.float64)
    if positions.size:
        status[positions] = _k.LABELED
        mindist[positions] = 0.0
    block_sums = np.empty(-(-n_pool // _k.SAMPLING_BLOCK), dtype=np.float64)

    indices = np.empty(k, dtype=np.int64)
    scores = np.empty(k, dtype=np.float64)
    probability = np.empty(k, dtype=np.float64)
    # k-means++ from the largest gradient: D^2 to an empty centre set is unbounded.
    gnorm2 = pnorm2 * xnorm2
    gnorm2[status != _k.CANDIDATE] = -1.0
    row = int(np.argmax(gnorm2))
    indices[0], scores[0], probability[0] = row, gnorm2[row], 1.0
    del gnorm2
    status[row] = _k.PICKED
    mindist[row] = 0.0
    n_uniform = 0
    if k > 1:  # one u = rng.random() per later pick, drawn up front (the same stream)
        args = (pool, proba, yhat, pnorm2, xnorm2, status, mindist, block_sums,
                rng.random(k - 1), row, n_unlabeled, 1, indices, scores, probability)
        if gang is None:
            gang = compiled(_k._picks_tasks, pool.dtype) or _cold_picks[0] + k > _COLD_PICKS
            _cold_picks[0] += 0 if gang else k
        if gang:
            n_uniform = _k.picks(*args)
        else:
            n_uniform = _stepwise_picks(*args, blocks_per_task)
    return Selection(indices=indices, scores=scores.astype(np.float32), method="badge",
                     n_pool=n_pool, extra={"probability": probability, "n_uniform": n_uniform})


def _stepwise_picks(X, probs, yhat, pnorm2, xnorm2, status, mindist, block_sums, us, row,
                    n_unlabeled, t0, indices, scores, probability, blocks_per_task):
    """``_k.picks`` one Python step per pick (``add_center``, ``block_sums``, ``sample_row``):
    the same picks, each pick paying a hand-off to the threads (~0.1 ms), without compiling
    the gang's kernel (see ``_COLD_PICKS``)."""
    n_uniform = 0
    for t in range(t0, t0 + us.shape[0]):
        _k.add_center(X, probs, yhat, pnorm2, xnorm2, row, mindist, blocks_per_task)
        _k.block_sums(mindist, block_sums)
        u = float(us[t - t0])
        row = int(_k.sample_row(mindist, block_sums, u))
        if row >= 0:
            total = 0.0
            for v in block_sums.tolist():
                total += v
            indices[t], scores[t], probability[t] = row, mindist[row], mindist[row] / total
        else:
            remaining = n_unlabeled - t
            row = int(_k.nth_candidate(status, min(int(u * remaining), remaining - 1)))
            indices[t], scores[t], probability[t] = row, 0.0, 1.0 / remaining
            n_uniform += 1
        status[row] = _k.PICKED
        mindist[row] = 0.0
    return n_uniform
