"""Uncertainty kernels: one score per row from class probabilities or logits.

Plain arrays in, plain arrays out. The only checks here are the ones that must touch every
element (finiteness, the probability simplex): they are fused into the scoring pass, because
a separate pass would double the memory traffic. A row that fails gets a NaN score and is
counted in the return value; the driver turns that count into a clear error.

Method codes (the driver maps names to codes): 0 entropy, 1 least confidence, 2 margin,
3 ratio. Higher score = more informative for every method. Scores are computed in float64
registers and stored into ``out`` (float32 or float64, the caller's choice).
"""

import numpy as np
from numba import njit, prange

from .._config import FASTMATH
from ._math import log32

ENTROPY, LEAST_CONFIDENCE, MARGIN, RATIO = 0, 1, 2, 3

# Blocks per parallel task: one set of scratch buffers per task, few enough tasks to balance.
_BLOCKS_PER_TASK = 32


def block_rows(n_classes: int) -> int:
    """Rows per transposed block: a power of two near 4096 / C, between 16 and 128.

    The (C, block) buffer then holds ~16 KiB (stays in L1). Measured on 2 cores: C = 10 runs
    best at 128 rows, C = 100 at 32 (1.5-2x faster than 128).
    """
    target = max(1, 4096 // max(n_classes, 1))
    return int(min(128, max(16, 1 << (target.bit_length() - 1))))


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _least_confidence_from_probs(probs, atol, out):
    """1 - max_j p_j of each row of probs (rows, C); returns the number of invalid rows.

    A row is valid when it sums to 1 within atol (false for any NaN/inf entry, which makes
    the sum NaN or inf) and no entry is below -atol; invalid rows get out[i] = NaN. The
    select-style min/max below (not ``min()``/``max()``) is what lets LLVM vectorise the
    class loop.
    """
    n, c = probs.shape
    n_bad = 0
    for i in prange(n):
        # Start from the first entry so the accumulators keep the input's dtype: float32
        # sums vectorise twice as wide (error ~C * 6e-8, far inside the tolerance).
        total = probs[i, 0]
        lowest = probs[i, 0]
        top = probs[i, 0]
        for j in range(1, c):
            p = probs[i, j]
            total += p
            lowest = lowest if lowest < p else p
            top = top if top > p else p
        if lowest >= -atol and abs(total - 1.0) <= atol:
            out[i] = 1.0 - np.float64(top)
        else:
            out[i] = np.nan
            n_bad += 1
    return n_bad


@njit(inline="always")
def _load_block(probs, start, m, columns, total, lowest):
    """Transpose rows [start, start + m) into columns (C, m); reset the validity sums."""
    c = probs.shape[1]
    for r in range(m):
        for j in range(c):
            columns[j, r] = probs[start + r, j]
    for r in range(m):
        total[r] = 0.0
        lowest[r] = np.inf


@njit(inline="always")
def _valid(total, lowest, r, atol):
    """The simplex check of one row (False for NaN/inf, which poison the sum)."""
    return lowest[r] >= -atol and abs(total[r] - 1.0) <= atol


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _top2_from_probs(probs, method, atol, block, out):
    """Margin, ratio or least confidence of each row of probs (rows, C), C >= 2.

    Same validity rule as _least_confidence_from_probs (which is faster for large C).

    Rows are processed in blocks: a block is transposed into a (C, block) buffer, so the
    class loop walks contiguous memory and the running top-2 vectorises across rows.
    """
    n, c = probs.shape
    n_blocks = (n + block - 1) // block
    n_tasks = (n_blocks + _BLOCKS_PER_TASK - 1) // _BLOCKS_PER_TASK
    n_bad = 0
    for task in prange(n_tasks):
        columns = np.empty((c, block), dtype=probs.dtype)
        total = np.empty(block, dtype=probs.dtype)
        lowest = np.empty(block, dtype=probs.dtype)
        top1 = np.empty(block, dtype=probs.dtype)
        top2 = np.empty(block, dtype=probs.dtype)
        for b in range(task * _BLOCKS_PER_TASK, min(n_blocks, (task + 1) * _BLOCKS_PER_TASK)):
            start = b * block
            m = min(n, start + block) - start
            _load_block(probs, start, m, columns, total, lowest)
            for r in range(m):
                top1[r] = -np.inf
                top2[r] = -np.inf
            for j in range(c):
                for r in range(m):
                    p = columns[j, r]
                    total[r] += p
                    lo = lowest[r]
                    lowest[r] = lo if lo < p else p
                    # branch-free running top-2; a tie at the top leaves top2 == top1
                    a = top1[r]
                    smaller = a if a < p else p
                    t2 = top2[r]
                    top2[r] = t2 if t2 > smaller else smaller
                    top1[r] = a if a > p else p
            for r in range(m):
                if _valid(total, lowest, r, atol):
                    p1 = np.float64(top1[r])
                    p2 = np.float64(top2[r])
                    if method == MARGIN:
                        out[start + r] = 1.0 - (p1 - p2)
                    elif method == LEAST_CONFIDENCE:
                        out[start + r] = 1.0 - p1
                    else:
                        out[start + r] = max(p2, 0.0) / p1
                else:
                    out[start + r] = np.nan
                    n_bad += 1
    return n_bad


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _entropy_from_probs32(probs, atol, block, out):
    """Entropy (nats) of each row of float32 probs, vectorised across rows with log32.

    Same blocks as _top2_from_probs. Entries below the smallest normal float32 (1.2e-38,
    incl. 0) contribute 0: their true p log p is below 1e-36. Same validity rule.
    """
    n, c = probs.shape
    tiny = np.float32(1.1754944e-38)
    n_blocks = (n + block - 1) // block
    n_tasks = (n_blocks + _BLOCKS_PER_TASK - 1) // _BLOCKS_PER_TASK
    n_bad = 0
    for task in prange(n_tasks):
        columns = np.empty((c, block), dtype=np.float32)
        total = np.empty(block, dtype=np.float32)
        lowest = np.empty(block, dtype=np.float32)
        acc = np.empty(block, dtype=np.float32)
        for b in range(task * _BLOCKS_PER_TASK, min(n_blocks, (task + 1) * _BLOCKS_PER_TASK)):
            start = b * block
            m = min(n, start + block) - start
            _load_block(probs, start, m, columns, total, lowest)
            for r in range(m):
                acc[r] = 0.0
            for j in range(c):
                for r in range(m):
                    p = columns[j, r]
                    total[r] += p
                    lo = lowest[r]
                    lowest[r] = lo if lo < p else p
                    # mask before the log: log32 needs a normal positive input; q = 1 adds 0
                    # (NaN/inf rows are caught by the sum check, whatever the log returns)
                    q = p if p > tiny else np.float32(1.0)
                    acc[r] -= q * log32(q)
            for r in range(m):
                if _valid(total, lowest, r, atol):
                    out[start + r] = acc[r]
                else:
                    out[start + r] = np.nan
                    n_bad += 1
    return n_bad


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _entropy_from_probs(probs, atol, out):
    """Shannon entropy (nats) of each row of probs with libm's log (used for float64 input).

    Terms with p <= 0 contribute 0 (the limit of p log p), so one-hot rows score 0.
    """
    n, c = probs.shape
    n_bad = 0
    for i in prange(n):
        total = 0.0
        lowest = np.inf
        acc = 0.0
        for j in range(c):
            p = probs[i, j]
            total += p
            lowest = min(lowest, p)
            if p > 0.0:
                acc -= p * np.log(p)
        if lowest >= -atol and abs(total - 1.0) <= atol:
            out[i] = acc
        else:
            out[i] = np.nan
            n_bad += 1
    return n_bad


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _scores_from_logits(logits, method, out):
    """Score each row of logits (rows, C), C >= 2, through a stable log-softmax.

    With t_j = z_j - max(z) and s = sum_j exp(t_j): p_j = exp(t_j) / s, so
    entropy = log s - sum_j exp(t_j) t_j / s, least confidence = 1 - 1/s,
    margin = 1 - (1 - exp(t_2)) / s, ratio = exp(t_2), with t_2 the second largest.
    Nothing of shape (rows, C) is stored. Rows with a non-finite entry get NaN and are
    counted in the return value.
    """
    n, c = logits.shape
    n_bad = 0
    for i in prange(n):
        top1 = -np.inf
        top2 = -np.inf
        check = 0.0
        for j in range(c):
            z = logits[i, j]
            check += z * 0.0  # stays 0.0 unless some z is NaN or +-inf
            top2 = max(top2, min(top1, z))
            top1 = max(top1, z)
        if not (check == 0.0):
            out[i] = np.nan
            n_bad += 1
            continue
        # float64 differences: z - max(z) cannot overflow for float32 inputs.
        m = np.float64(top1)
        s = 0.0
        w = 0.0
        if method == ENTROPY:
            for j in range(c):
                t = np.float64(logits[i, j]) - m
                e = np.exp(t)
                s += e
                if e > 0.0:
                    w += e * t
            out[i] = np.log(s) - w / s
        else:
            for j in range(c):
                s += np.exp(np.float64(logits[i, j]) - m)
            if method == LEAST_CONFIDENCE:
                out[i] = 1.0 - 1.0 / s
            elif method == MARGIN:
                out[i] = 1.0 - (1.0 - np.exp(np.float64(top2) - m)) / s
            else:
                out[i] = np.exp(np.float64(top2) - m)
    return n_bad


def uncertainty_scores(values, code, from_logits, atol, out):
    """Score a (rows, C) chunk by method ``code`` with the fastest kernel for its shape.

    Plain dispatch, no validation: returns the number of invalid rows (their ``out`` is NaN).
    """
    if from_logits:
        return _scores_from_logits(values, code, out)
    c = values.shape[1]
    if code == LEAST_CONFIDENCE and c > 32:
        # long rows: the per-row kernel vectorises along the row; short rows: the
        # transposed-block kernel vectorises across rows (measured 1.3x at C = 10).
        return _least_confidence_from_probs(values, atol, out)
    if code != ENTROPY:
        return _top2_from_probs(values, code, atol, block_rows(c), out)
    if values.dtype == np.float32:
        return _entropy_from_probs32(values, atol, block_rows(c), out)
    return _entropy_from_probs(values, atol, out)
