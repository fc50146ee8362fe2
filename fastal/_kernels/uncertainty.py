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

ENTROPY, LEAST_CONFIDENCE, MARGIN, RATIO = 0, 1, 2, 3

# Rows per block in the top-2 kernel: the block is transposed into a (C, BLOCK) buffer that
# stays in L1, so the class loop runs over contiguous memory and vectorises across rows.
_BLOCK = 128
# Blocks per parallel task: one buffer allocation per task, few enough tasks to balance.
_BLOCKS_PER_TASK = 32


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _top2_from_probs(probs, method, atol, out):
    """Least confidence, margin or ratio of each row of probs (rows, C), C >= 2.

    Writes out[i]; returns the number of invalid rows (out[i] = NaN for those). A row is
    valid when it sums to 1 within atol (false for any NaN/inf entry, which makes the sum
    NaN or inf) and no entry is below -atol.
    """
    n, c = probs.shape
    n_blocks = (n + _BLOCK - 1) // _BLOCK
    n_tasks = (n_blocks + _BLOCKS_PER_TASK - 1) // _BLOCKS_PER_TASK
    n_bad = 0
    for task in prange(n_tasks):
        columns = np.empty((c, _BLOCK), dtype=probs.dtype)
        total = np.empty(_BLOCK, dtype=np.float64)
        lowest = np.empty(_BLOCK, dtype=probs.dtype)
        top1 = np.empty(_BLOCK, dtype=probs.dtype)
        top2 = np.empty(_BLOCK, dtype=probs.dtype)
        block_end = min(n_blocks, (task + 1) * _BLOCKS_PER_TASK)
        for block in range(task * _BLOCKS_PER_TASK, block_end):
            start = block * _BLOCK
            m = min(n, start + _BLOCK) - start
            for r in range(m):
                for j in range(c):
                    columns[j, r] = probs[start + r, j]
            for r in range(m):
                total[r] = 0.0
                lowest[r] = np.inf
                top1[r] = -np.inf
                top2[r] = -np.inf
            for j in range(c):
                for r in range(m):
                    p = columns[j, r]
                    total[r] += p
                    lowest[r] = min(lowest[r], p)
                    # branch-free running top-2: ties keep top2 == top1.
                    top2[r] = max(top2[r], min(top1[r], p))
                    top1[r] = max(top1[r], p)
            for r in range(m):
                if lowest[r] >= -atol and abs(total[r] - 1.0) <= atol:
                    p1 = np.float64(top1[r])
                    p2 = np.float64(top2[r])
                    if method == LEAST_CONFIDENCE:
                        out[start + r] = 1.0 - p1
                    elif method == MARGIN:
                        out[start + r] = 1.0 - (p1 - p2)
                    else:
                        out[start + r] = max(p2, 0.0) / p1
                else:
                    out[start + r] = np.nan
                    n_bad += 1
    return n_bad


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _entropy_from_probs(probs, atol, out):
    """Shannon entropy (nats) of each row of probs; same validity rule as _top2_from_probs.

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
