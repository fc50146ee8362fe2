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
from numba import njit, prange, types
from numba.extending import overload

from .._config import FASTMATH
from ._math import log32

ENTROPY, LEAST_CONFIDENCE, MARGIN, RATIO = 0, 1, 2, 3

# Blocks per parallel task: one set of scratch buffers per task, few enough tasks to balance.
_BLOCKS_PER_TASK = 32


def lane_view(values):
    """(units, W): ``values`` (rows, C) seen as rows of C / W units of W float32 lanes each.

    Copying a block into column order (the transpose) costs one load and one store per
    unit, so moving 16-byte units (complex128, W = 4) or 8-byte units (int64, W = 2) instead
    of single floats cuts the transpose's cost 4x / 2x. Each row's class loop then runs
    over W interleaved lanes, merged at the end. Float32, C-contiguous rows with C divisible
    by 4 or 2 only; anything else is returned as is (W = 1).
    """
    c = values.shape[1]
    if values.dtype == np.float32 and values.flags.c_contiguous and values.shape[0] > 0:
        if c % 4 == 0:
            return values.view(np.complex128), 4
        if c % 2 == 0:
            return values.view(np.int64), 2
    return values, 1


def _as_lanes(units):
    """The float lanes of a units buffer (Numba only; see the overload below)."""


@overload(_as_lanes, inline="always")
def _as_lanes_impl(units):
    if units.dtype in (types.complex128, types.int64):
        return lambda units: units.view(np.float32)
    return lambda units: units


def block_rows(n_classes: int) -> int:
    """Rows per transposed block: a power of two near 1024 / C, between 16 and 128.

    The (C, block) buffer then holds ~4 KiB. Measured on 2 cores (float32, 100M values):
    C <= 10 runs best at 64-128 rows, C = 20-50 at 32, C >= 100 at 16 (1.3-1.8x faster
    than 64 there).
    """
    target = max(1, 1024 // max(n_classes, 1))
    return int(min(128, max(16, 1 << (target.bit_length() - 1))))


@njit(inline="always")
def _load_block(units, start, m, buffer):
    """Transpose rows [start, start + m) of units (rows, U) into buffer (U, block).

    Short rows (U <= 8) go four at a time: the inner loop's set-up is then paid once per
    four rows (measured 1.2x at C = 10; slower for long rows).
    """
    u = units.shape[1]
    r = 0
    if u <= 8:
        while r + 4 <= m:
            for j in range(u):
                buffer[j, r] = units[start + r, j]
                buffer[j, r + 1] = units[start + r + 1, j]
                buffer[j, r + 2] = units[start + r + 2, j]
                buffer[j, r + 3] = units[start + r + 3, j]
            r += 4
    while r < m:
        for j in range(u):
            buffer[j, r] = units[start + r, j]
        r += 1


@njit(inline="always")
def _valid(total, lowest, atol):
    """The simplex check of one row (False for NaN/inf, which poison the sum)."""
    return (lowest >= -atol) & (abs(total - 1.0) <= atol)


@njit(inline="always")
def _finish_top2(top1, top2, total, lowest, w, m, method, atol, out):
    """Merge each row's w lanes, score rows [0, m) into out; returns the invalid-row count."""
    bad = 0
    for r in range(m):
        q = w * r
        t1 = top1[q]
        t2 = top2[q]
        tot = total[q]
        low = lowest[q]
        for h in range(1, w):
            b1 = top1[q + h]
            b2 = top2[q + h]
            smaller = t1 if t1 < b1 else b1
            t1 = t1 if t1 > b1 else b1
            t2 = t2 if t2 > b2 else b2
            t2 = t2 if t2 > smaller else smaller
            tot += total[q + h]
            lo = lowest[q + h]
            low = low if low < lo else lo
        p1 = np.float64(t1)
        p2 = np.float64(t2)
        if method == MARGIN:
            score = 1.0 - (p1 - p2)
        elif method == LEAST_CONFIDENCE:
            score = 1.0 - p1
        else:
            score = max(p2, 0.0) / p1
        ok = _valid(tot, low, atol)
        out[r] = score if ok else np.nan
        bad += 0 if ok else 1
    return bad


@njit(parallel=True, cache=True, fastmath=FASTMATH, error_model="numpy")
def _top2_from_probs(units, n_lanes, method, atol, block, out):
    """Margin, ratio or least confidence of each row of probs, C >= 2.

    ``units`` is probs (rows, C) or its ``lane_view`` with ``n_lanes`` lanes per unit. A row
    is valid when it sums to 1 within atol (false for any NaN/inf entry, which makes the sum
    NaN or inf) and no entry is below -atol; invalid rows get out[i] = NaN and are counted
    in the return value.

    Rows are processed in blocks: a block is transposed into a (units, block * lanes)
    buffer, so the class loop walks contiguous memory and the running top-2 (plus the sum
    and the minimum of the validity check) vectorises across rows; classes are taken two
    at a time to halve the accumulators' loads and stores. Lanes are merged per row at the
    end, branch-free so that loop vectorises too.
    """
    n, u = units.shape
    w = n_lanes
    need2 = method != LEAST_CONFIDENCE
    n_blocks = (n + block - 1) // block
    n_tasks = (n_blocks + _BLOCKS_PER_TASK - 1) // _BLOCKS_PER_TASK
    n_bad = 0
    for task in prange(n_tasks):
        buffer = np.empty((u, block), dtype=units.dtype)
        columns = _as_lanes(buffer)
        total = np.empty(w * block, dtype=columns.dtype)
        lowest = np.empty(w * block, dtype=columns.dtype)
        top1 = np.empty(w * block, dtype=columns.dtype)
        top2 = np.empty(w * block, dtype=columns.dtype)
        bad = 0
        for b in range(task * _BLOCKS_PER_TASK, min(n_blocks, (task + 1) * _BLOCKS_PER_TASK)):
            start = b * block
            m = min(n, start + block) - start
            _load_block(units, start, m, buffer)
            lanes = w * m
            for q in range(lanes):
                p = columns[0, q]
                total[q] = p
                lowest[q] = p
                top1[q] = p
                top2[q] = -np.inf
            j = 1
            while j + 1 < u:
                if need2:
                    for q in range(lanes):
                        p = columns[j, q]
                        s = columns[j + 1, q]
                        hi = p if p > s else s
                        lo = p if p < s else s
                        total[q] += p + s
                        low = lowest[q]
                        lowest[q] = low if low < lo else lo
                        # merge the pair's (hi, lo) into the running (top1, top2); ties
                        # leave top2 == top1
                        a = top1[q]
                        smaller = a if a < hi else hi
                        t2 = top2[q]
                        t2 = t2 if t2 > lo else lo
                        top2[q] = t2 if t2 > smaller else smaller
                        top1[q] = a if a > hi else hi
                else:  # least confidence needs no top2 (5-10 % faster at C = 100)
                    for q in range(lanes):
                        p = columns[j, q]
                        s = columns[j + 1, q]
                        hi = p if p > s else s
                        lo = p if p < s else s
                        total[q] += p + s
                        low = lowest[q]
                        lowest[q] = low if low < lo else lo
                        a = top1[q]
                        top1[q] = a if a > hi else hi
                j += 2
            if j < u:
                for q in range(lanes):
                    p = columns[j, q]
                    total[q] += p
                    low = lowest[q]
                    lowest[q] = low if low < p else p
                    a = top1[q]
                    smaller = a if a < p else p
                    t2 = top2[q]
                    top2[q] = t2 if t2 > smaller else smaller
                    top1[q] = a if a > p else p
            # a literal lane count lets LLVM unroll the merge and vectorise the row loop
            if w == 4:
                bad += _finish_top2(top1, top2, total, lowest, 4, m, method, atol, out[start:])
            elif w == 2:
                bad += _finish_top2(top1, top2, total, lowest, 2, m, method, atol, out[start:])
            else:
                bad += _finish_top2(top1, top2, total, lowest, 1, m, method, atol, out[start:])
        n_bad += bad
    return n_bad


@njit(inline="always")
def _finish_entropy(acc, total, lowest, w, m, atol, out):
    """Merge each row's w lanes of entropy sums into out[:m]; returns the invalid-row count."""
    bad = 0
    for r in range(m):
        q = w * r
        tot = total[q]
        low = lowest[q]
        h_sum = acc[q]
        for h in range(1, w):
            tot += total[q + h]
            lo = lowest[q + h]
            low = low if low < lo else lo
            h_sum += acc[q + h]
        ok = _valid(tot, low, atol)
        out[r] = h_sum if ok else np.nan
        bad += 0 if ok else 1
    return bad


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _entropy_from_probs32(units, n_lanes, atol, block, out):
    """Entropy (nats) of each row of float32 probs, vectorised across rows with log32.

    ``units`` as in _top2_from_probs (the same blocks and lanes). Entries below the smallest
    normal float32 (1.2e-38, incl. 0) contribute 0: their true p log p is below 1e-36.
    Same validity rule.
    """
    n, u = units.shape
    w = n_lanes
    tiny = np.float32(1.1754944e-38)
    n_blocks = (n + block - 1) // block
    n_tasks = (n_blocks + _BLOCKS_PER_TASK - 1) // _BLOCKS_PER_TASK
    n_bad = 0
    for task in prange(n_tasks):
        buffer = np.empty((u, block), dtype=units.dtype)
        columns = _as_lanes(buffer)
        total = np.empty(w * block, dtype=np.float32)
        lowest = np.empty(w * block, dtype=np.float32)
        acc = np.empty(w * block, dtype=np.float32)
        bad = 0
        for b in range(task * _BLOCKS_PER_TASK, min(n_blocks, (task + 1) * _BLOCKS_PER_TASK)):
            start = b * block
            m = min(n, start + block) - start
            _load_block(units, start, m, buffer)
            lanes = w * m
            for q in range(lanes):
                total[q] = 0.0
                lowest[q] = np.inf
                acc[q] = 0.0
            for j in range(u):
                for q in range(lanes):
                    p = columns[j, q]
                    total[q] += p
                    low = lowest[q]
                    lowest[q] = low if low < p else p
                    # mask before the log: log32 needs a normal positive input; x = 1 adds 0
                    # (NaN/inf rows are caught by the sum check, whatever the log returns)
                    x = p if p > tiny else np.float32(1.0)
                    acc[q] -= x * log32(x)
            if w == 4:
                bad += _finish_entropy(acc, total, lowest, 4, m, atol, out[start:])
            elif w == 2:
                bad += _finish_entropy(acc, total, lowest, 2, m, atol, out[start:])
            else:
                bad += _finish_entropy(acc, total, lowest, 1, m, atol, out[start:])
        n_bad += bad
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
    if code != ENTROPY:
        units, n_lanes = lane_view(values)
        return _top2_from_probs(units, n_lanes, code, atol, block_rows(c), out)
    if values.dtype == np.float32:
        units, n_lanes = lane_view(values)
        return _entropy_from_probs32(units, n_lanes, atol, block_rows(c), out)
    return _entropy_from_probs(values, atol, out)
