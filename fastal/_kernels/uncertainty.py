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
from numba import njit, types
from numba.extending import overload

from .._config import FASTMATH
from ._intrinsics import prefetch, prefetch_at
from ._math import _EXP_LOWEST, HELPER, KERNEL, exp32, exp32_in_range, log32
from ._parallel import run_tasks
from .linear import _ROWS as _LINEAR_ROWS
from .linear import _block_logits

ENTROPY, LEAST_CONFIDENCE, MARGIN, RATIO = 0, 1, 2, 3

# Shifted logits z - max are clamped here before exp32_in_range: e**-87.33 = 1.2e-38 is
# negligible next to the row's sum (>= 1), and the clamp keeps t finite when z - max
# overflows (z = -3e38, max = 3e38), so 0 * t is never 0 * -inf.
_T_FLOOR = _EXP_LOWEST
# |z| <= max is false exactly for NaN and +-inf (the float64 kernel's finiteness test).
_FLOAT64_MAX = 1.7976931348623157e308
# log1p(x) of the softmax tail by its series below this x (error < x^4 / 5 relative).
_SERIES_BELOW = 2.0 ** -10

# Blocks per parallel task: one set of scratch buffers per task, few enough tasks to balance.
_BLOCKS_PER_TASK = 32
# Rows per task of the per-row kernels (float64 input).
_ROWS_PER_TASK = 4096


def lane_view(values):
    """(units, W): ``values`` (rows, C) seen as rows of C / W units of W float32 lanes each.

    Copying a block into column order (the transpose) costs one load and one store per
    unit, so moving 16-byte units (complex128, W = 4) or 8-byte units (int64, W = 2) instead
    of single floats cuts the transpose's cost 4x / 2x. Each row's class loop then runs
    over W interleaved lanes, merged at the end. Float32 with C divisible by 4 or 2 only;
    anything else is returned as is (W = 1).

    Column-major float32 values (each class's column contiguous, as the per-class columns
    of Arrow data are read; ``values.strides[0] == 4``) get the same W, so the kernels sum
    in the same order and the scores are bit-identical: the units are then a strided array
    over the columns (unit (r, j) starts at class W * j of row r; its bytes are not the
    unit's lanes, which ``_load_block`` gathers from the W columns).
    """
    c = values.shape[1]
    n = values.shape[0]
    if values.dtype != np.float32 or n == 0:
        return values, 1
    w = 4 if c % 4 == 0 else 2 if c % 2 == 0 else 1
    if w == 1:
        return values, 1
    unit = np.complex128 if w == 4 else np.int64
    if values.flags.c_contiguous:
        return values.view(unit), w
    if values.strides[0] == 4 and values.strides[1] % 4 == 0 and values.strides[1] >= 4 * n:
        return _column_units(values, unit, w), w
    return values, 1


class _Interface:
    """An array interface for ``np.asarray``; holds ``base`` so the memory stays alive."""

    def __init__(self, interface, base):
        self.__array_interface__ = interface
        self.base = base


def _column_units(values, unit, w):
    """(rows, C / w) units of ``unit`` dtype over column-major float32 values (see lane_view)."""
    n, c = values.shape
    interface = {"data": (values.__array_interface__["data"][0], False),
                 "typestr": np.dtype(unit).str, "shape": (n, c // w),
                 "strides": (4, w * values.strides[1]), "version": 3}
    return np.asarray(_Interface(interface, values))


def _lanes(units):
    """Lanes per unit of a units array, a compile-time constant (Numba only; see below)."""


@overload(_lanes, inline="always")
def _lanes_impl(units):
    # One specialisation per units dtype, so the lane count is a constant: only the merge
    # code of that lane count is compiled (and LLVM unrolls it).
    lanes = 4 if units.dtype == types.complex128 else 2 if units.dtype == types.int64 else 1
    return lambda units: lanes


def _n_tasks(n_rows, block):
    n_blocks = (n_rows + block - 1) // block
    return (n_blocks + _BLOCKS_PER_TASK - 1) // _BLOCKS_PER_TASK


def _block_near(values: int, n_classes: int) -> int:
    """The power of two at or below ``values / C``, between 16 and 128."""
    target = max(1, values // max(n_classes, 1))
    return int(min(128, max(16, 1 << (target.bit_length() - 1))))


def _block_scratch(kernel, units, n_lanes, block, n_lane_arrays, lane_dtype, n_row_arrays=0):
    """``run_tasks``'s scratch of the block kernels: the (U, block) transpose buffer in the
    units' dtype, the same memory as float lanes (U, lanes * block), ``n_lane_arrays``
    arrays of lanes * block ``lane_dtype`` values and ``n_row_arrays`` float32 arrays of
    ``block`` values."""
    u = units.shape[1]
    key = (kernel, u, units.dtype.str, n_lanes, block, np.dtype(lane_dtype).str)

    def make():
        buffer = np.empty((u, block), dtype=units.dtype)
        columns = buffer.view(np.float32) if n_lanes > 1 else buffer
        lanes = [np.empty(n_lanes * block, dtype=lane_dtype) for _ in range(n_lane_arrays)]
        rows = [np.empty(block, dtype=np.float32) for _ in range(n_row_arrays)]
        return (buffer, columns, *lanes, *rows)
    return key, make


def block_rows(n_classes: int) -> int:
    """Rows per transposed block: a power of two near 1024 / C, between 16 and 128.

    The (C, block) buffer then holds ~4 KiB. Measured on 2 cores (float32, 100M values):
    C <= 10 runs best at 64-128 rows, C = 20-50 at 32, C >= 100 at 16 (1.3-1.8x faster
    than 64 there).
    """
    return _block_near(1024, n_classes)


def block_rows_logits(n_classes: int) -> int:
    """Rows per transposed block of the float32 logits kernel: a power of two near 3200 / C,
    between 16 and 128 (so 128 at C <= 25, 32 at C = 100).

    Larger than ``block_rows`` because the logits kernel runs about six short loops across
    the block's rows (max, lane merge, exp pass, finish), each with its set-up cost.
    Measured on 2 cores (float32, 2M x 10, 200k x 100): 128 rows at C = 10 ran 1.25-1.35x
    faster than 64 for every method, 32 at C = 100 1.1-1.3x faster than 16. Scores do not
    depend on it (each row's arithmetic is the same in any block).
    """
    return _block_near(3200, n_classes)


def _load_block(units, start, m, buffer, columns, pairs):
    """Transpose rows [start, start + m) of units (rows, U) into buffer (U, block)
    (``columns``: the same memory as float lanes; ``pairs``: True or None, see
    ``_load_rows``).

    Numba only; one implementation per layout of ``units``, chosen at compile time (see
    the overload below): C-contiguous rows, column-major floats, or the column units of
    ``lane_view``.
    """


@njit(**HELPER)
def _load_rows(units, start, m, buffer, pairs):
    """``_load_block`` for rows in memory order (any layout; C-contiguous is the fast one).

    Short rows (U <= 8) go four at a time: the inner loop's set-up is then paid once per
    four rows (measured 1.2x at C = 10; slower for long rows). With ``pairs`` (True; None
    is pruned at compile time) rows of 9 to 32 units go two at a time: for the logits
    kernel, whose next block is prefetched, 1.03-1.14x for the whole kernel at 500,000 x
    100 (twelve same-process A/B comparisons, 2 threads); the probability kernels, which
    read from DRAM without prefetching, were not faster with it (0.82-1.01x, inside this
    VM's noise), so they pass None and keep one row at a time.
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
    elif pairs is not None:
        if u <= 32:
            while r + 2 <= m:
                for j in range(u):
                    buffer[j, r] = units[start + r, j]
                    buffer[j, r + 1] = units[start + r + 1, j]
                r += 2
    while r < m:
        for j in range(u):
            buffer[j, r] = units[start + r, j]
        r += 1


@njit(**HELPER)
def _load_columns(units, start, m, buffer):
    """``_load_block`` for column-major floats (units.strides[0] == itemsize): one
    contiguous copy per class."""
    for j in range(units.shape[1]):
        for r in range(m):
            buffer[j, r] = units[start + r, j]


@overload(_load_block, inline="always")
def _load_block_impl(units, start, m, buffer, columns, pairs):
    if isinstance(buffer, types.NoneType):  # a linear head's blocks (never loaded)
        return lambda units, start, m, buffer, columns, pairs: None
    if units.layout == "C":
        return lambda units, start, m, buffer, columns, pairs: _load_rows(units, start, m,
                                                                          buffer, pairs)
    if units.dtype in (types.complex128, types.int64):
        # lane_view's column units: the float32 class columns, W of them per unit
        lanes = 4 if units.dtype == types.complex128 else 2

        def impl(units, start, m, buffer, columns, pairs):
            n, u = units.shape
            pitch = units.strides[1] // (4 * lanes)  # floats from one class to the next
            k = ((u * lanes - 1) * pitch + n + lanes - 1) // lanes
            floats = np.lib.stride_tricks.as_strided(
                units, shape=(k,), strides=(units.itemsize,)).view(np.float32)
            for j in range(u):
                for h in range(lanes):
                    first = (lanes * j + h) * pitch + start
                    for r in range(m):
                        columns[j, lanes * r + h] = floats[first + r]
        return impl

    def impl(units, start, m, buffer, columns, pairs):
        if units.strides[0] == units.itemsize:
            _load_columns(units, start, m, buffer)
        else:
            _load_rows(units, start, m, buffer, pairs)
    return impl


def _prefetch_plan(units, block):
    """``(pieces, size)``: how ``_prefetch`` splits a block of ``block`` rows (Numba only;
    one implementation per layout, chosen at compile time). C-contiguous rows are one run
    of bytes: pieces of ``size`` bytes, a cache line's for rows of 64 bytes or more, else
    as many whole rows as fit in one (C = 10: a piece per row, the addresses that were
    measured best). Other layouts: a row per piece, ``size`` rows apart (as many as fit in a
    cache line); for lane_view's column units that touches lines the block does not
    need."""


@overload(_prefetch_plan)
def _prefetch_plan_impl(units, block):
    if units.layout == "C":
        def impl(units, block):
            row = units.shape[1] * units.itemsize
            rows = 64 // row
            size = row * rows if rows > 0 else 64
            return (block * row + size - 1) // size, size
        return impl

    def impl(units, block):
        step = 64 // (units.shape[1] * units.itemsize)
        step = step if step > 1 else 1
        return (block + step - 1) // step, step
    return impl


def _prefetch(units, row, first, count, size):
    """Prefetch pieces [first, first + count) (``_prefetch_plan``) of the block of rows
    that starts at row ``row`` (Numba only)."""


@overload(_prefetch)
def _prefetch_impl(units, row, first, count, size):
    if units.layout == "C":
        def impl(units, row, first, count, size):
            for k in range(first, first + count):  # past the array's end: no fault
                prefetch_at(units, row, k * size)
        return impl

    def impl(units, row, first, count, size):
        n = units.shape[0]
        for k in range(first, first + count):
            r = row + k * size
            prefetch(units, r if r < n else n - 1)
    return impl


@njit(**HELPER)
def _valid(total, lowest, atol):
    """The simplex check of one row (False for NaN/inf, which poison the sum)."""
    return (lowest >= -atol) & (abs(total - 1.0) <= atol)


@njit(inline="always")
def _merge_top2(t1, t2, b1, b2):
    """The largest and second largest of two lanes' (largest, second largest) pairs."""
    smaller = t1 if t1 < b1 else b1
    t1 = t1 if t1 > b1 else b1
    t2 = t2 if t2 > b2 else b2
    return t1, (t2 if t2 > smaller else smaller)


@njit(**HELPER)
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
            t1, t2 = _merge_top2(t1, t2, top1[q + h], top2[q + h])
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


@njit(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy", **KERNEL)
def _top2_from_probs_tasks(units, method, atol, block, out, buffer, columns, total, lowest,
                           top1, top2, lo, hi):
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
    w = _lanes(units)
    need2 = method != LEAST_CONFIDENCE
    n_blocks = (n + block - 1) // block
    n_tasks = (n_blocks + _BLOCKS_PER_TASK - 1) // _BLOCKS_PER_TASK
    n_bad = 0
    for task in range(lo, hi):
        bad = 0
        for b in range(task * _BLOCKS_PER_TASK, min(n_blocks, (task + 1) * _BLOCKS_PER_TASK)):
            start = b * block
            m = min(n, start + block) - start
            _load_block(units, start, m, buffer, columns, None)
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
            bad += _finish_top2(top1, top2, total, lowest, w, m, method, atol, out[start:])
        n_bad += bad
    return n_bad


def _top2_from_probs(units, n_lanes, method, atol, block, out):
    """Margin, ratio or least confidence of each row (see ``_top2_from_probs_tasks``)."""
    lane_dtype = np.float32 if n_lanes > 1 else units.dtype
    return run_tasks(_top2_from_probs_tasks, _n_tasks(units.shape[0], block), units, method,
                     atol, block, out,
                     scratch=_block_scratch("top2", units, n_lanes, block, 4, lane_dtype))


@njit(**HELPER)
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


@njit(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy", **KERNEL)
def _entropy_from_probs32_tasks(units, atol, block, out, buffer, columns, total, lowest, acc,
                                lo, hi):
    """Entropy (nats) of each row of float32 probs, vectorised across rows with log32.

    ``units`` as in _top2_from_probs (the same blocks and lanes). Entries below the smallest
    normal float32 (1.2e-38, incl. 0) contribute 0: their true p log p is below 1e-36.
    Same validity rule.
    """
    n, u = units.shape
    w = _lanes(units)
    tiny = np.float32(1.1754944e-38)
    n_blocks = (n + block - 1) // block
    n_tasks = (n_blocks + _BLOCKS_PER_TASK - 1) // _BLOCKS_PER_TASK
    n_bad = 0
    for task in range(lo, hi):
        bad = 0
        for b in range(task * _BLOCKS_PER_TASK, min(n_blocks, (task + 1) * _BLOCKS_PER_TASK)):
            start = b * block
            m = min(n, start + block) - start
            _load_block(units, start, m, buffer, columns, None)
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
            bad += _finish_entropy(acc, total, lowest, w, m, atol, out[start:])
        n_bad += bad
    return n_bad


def _entropy_from_probs32(units, n_lanes, atol, block, out):
    """Entropy of each row of float32 probabilities (see ``_entropy_from_probs32_tasks``)."""
    return run_tasks(_entropy_from_probs32_tasks, _n_tasks(units.shape[0], block), units, atol,
                     block, out, scratch=_block_scratch("entropy", units, n_lanes, block, 3,
                                                        np.float32))


@njit(nogil=True, cache=True, fastmath=FASTMATH, **KERNEL)
def _entropy_from_probs_tasks(probs, atol, out, lo, hi):
    """Shannon entropy (nats) of rows [lo * R, hi * R) of probs with libm's log (float64 input).

    Terms with p <= 0 contribute 0 (the limit of p log p), so one-hot rows score 0.
    """
    n, c = probs.shape
    n_bad = 0
    for i in range(lo * _ROWS_PER_TASK, min(n, hi * _ROWS_PER_TASK)):
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


def _entropy_from_probs(probs, atol, out):
    """Entropy of each row of (float64) probabilities (see ``_entropy_from_probs_tasks``)."""
    return run_tasks(_entropy_from_probs_tasks, _row_tasks(probs.shape[0]), probs, atol, out)


@njit(**HELPER)
def _finish_logits_max(top1, top2, check, w, m, row_max, row_second, row_check, lane_max):
    """Merge each row's w lanes of (top1, top2, check); broadcast the row max to its lanes."""
    for r in range(m):
        q = w * r
        t1 = top1[q]
        t2 = top2[q]
        ok = check[q]
        for h in range(1, w):
            t1, t2 = _merge_top2(t1, t2, top1[q + h], top2[q + h])
            ok += check[q + h]
        row_max[r] = t1
        row_second[r] = t2
        row_check[r] = ok
        for h in range(w):
            lane_max[q + h] = t1


@njit(inline="always")
def _logits_score(tail, weighted_sum, second, top, method, entropy):
    """The score of one row from s - 1 = ``tail`` (float64), sum_j e^t_j t_j (entropy only)
    and the two largest logits (see ``_finish_logits``)."""
    s = 1.0 + tail
    if entropy is not None:  # None: pruned before compilation (no log32 compiled)
        # log s = log1p(tail): a series for small tails (relative error < tail^4 / 5),
        # else log(fs) + log(s / fs) with fs = float32(s) (log32 and a first-order
        # correction, |s / fs - 1| < 6e-8); both vectorise, unlike libm's log
        series = tail * (1.0 - tail * (0.5 - tail * (1.0 / 3.0 - tail * 0.25)))
        fs = np.float32(s)
        log_s = np.float64(log32(fs)) + (s - np.float64(fs)) / s
        log_s = series if tail < _SERIES_BELOW else log_s
        return log_s - weighted_sum / s
    e2 = np.float64(exp32(second - top))  # e^t2: the second largest probability times s
    if method == LEAST_CONFIDENCE:
        return tail / s
    if method == MARGIN:
        return (tail + e2) / s
    return e2


@njit(**HELPER)
def _finish_logits(columns, u, rest, weighted, w, m, row_second, row_max, row_check, method,
                   entropy, out):
    """Merge the lanes' sums; score rows [0, m) into out; returns the invalid-row count.

    ``rest`` holds each lane's sum of e^t_j over the entries below the row max (t_j < 0),
    so s = sum_j e^t_j = n_max + rest with n_max the number of entries equal to the max (1
    unless the top two logits tie; then counted here from the block). With t_2 the second
    largest shifted logit: least confidence = 1 - 1/s = (s - 1) / s, margin =
    (s - 1 + e^t2) / s, ratio = e^t2, entropy = log s - (sum_j e^t_j t_j) / s. Every
    formula is a ratio of sums of non-negative terms: nothing cancels however confident the
    row, so the relative error stays that of exp32 and the float32 sums.

    One loop merges and scores every row as if its max were unique (it vectorises: one
    loop instead of four was measured 1.3x faster for the whole finish); rows whose top two
    logits tie (rare) are then scored again with their count of maxima.
    """
    bad = 0
    ties = 0
    for r in range(m):
        q = w * r
        tail = np.float64(rest[q])  # s - 1: kept apart from the 1 so tiny tails keep digits
        for h in range(1, w):
            tail += rest[q + h]
        a = 0.0
        if entropy is not None:
            a = np.float64(weighted[q])
            for h in range(1, w):
                a += weighted[q + h]
        score = _logits_score(tail, a, row_second[r], row_max[r], method, entropy)
        ties += 1 if row_second[r] == row_max[r] else 0
        ok = row_check[r] == 0.0
        out[r] = score if ok else np.nan
        bad += 0 if ok else 1
    if ties:
        for r in range(m):
            top = row_max[r]
            if row_second[r] == top and row_check[r] == 0.0:
                q = w * r
                tail = np.float64(rest[q])
                for h in range(1, w):
                    tail += rest[q + h]
                n_max = 0.0
                for j in range(u):
                    for h in range(w):
                        n_max += 1.0 if columns[j, q + h] == top else 0.0
                tail += n_max - 1.0
                a = 0.0
                if entropy is not None:
                    a = np.float64(weighted[q])
                    for h in range(1, w):
                        a += weighted[q + h]
                out[r] = _logits_score(tail, a, top, top, method, entropy)
    return bad


@njit(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy", **KERNEL)
def _scores_from_logits32_tasks(units, method, block, out, entropy, head, buffer, columns,
                                lanes, XT, acc, lo, hi):
    """Score each row of float32 logits (rows, C), C >= 2, through a stable softmax.

    ``units`` is the logits or their ``lane_view`` (the same transposed blocks and lanes as
    ``_top2_from_probs``). Per block: a first pass over the classes, two at a time, finds
    each row's max and second largest logit, and flags non-finite entries by summing z * 0
    (0 for a finite z, NaN for NaN and +-inf: exact IEEE arithmetic, which holds because
    fastal compiles without fast-math flags; with reassociation z1 * 0 + z2 * 0 could become
    (z1 + z2) * 0 and overflow to NaN for two finite -3e38); a second pass sums e^(z - max)
    over the entries below the max with ``exp32_in_range``, vectorised across rows, the max
    subtraction in registers, nothing of shape (rows, C) stored. Rows with a non-finite logit get NaN and are counted in the return
    value.

    Precision: exp32 and log32 are within 2e-7 relative and the sums are over non-negative
    terms (float32 per lane, float64 across lanes), so scores are within about
    (2 + C / w) * 6e-8 relative of the float64 formula (w lanes), for any confidence.

    ``head``: None, or a linear head's ``(X, W, b)`` (``linear_scores``): then ``units`` is
    an empty array of the logits' units (its dtype sets the lanes) and each block's logits
    are computed into ``columns`` (``linear._block_logits``, scratch ``XT`` and ``acc``)
    instead of loaded (``buffer`` None: ``_load_block`` compiles to nothing); nothing is
    prefetched. A specialisation of its own: None prunes that code (and ``XT``, ``acc``
    are None).
    """
    # The six lane and three row buffers are rows of one scratch array, ``lanes``: every
    # array argument adds to the kernel's CPython wrapper (compiled in each fresh process).
    top1 = lanes[0]
    top2 = lanes[1]
    check = lanes[2]
    lane_max = lanes[3]
    rest = lanes[4]
    weighted = lanes[5]
    row_max = lanes[6]
    row_second = lanes[7]
    row_check = lanes[8]
    n, u = units.shape
    if head is not None:
        n = head[0].shape[0]
    w = _lanes(units)
    n_blocks = (n + block - 1) // block
    n_tasks = (n_blocks + _BLOCKS_PER_TASK - 1) // _BLOCKS_PER_TASK
    zero = np.float32(0.0)
    one = np.float32(1.0)
    # Margin and least confidence prefetch the next block's rows (``_prefetch``), spread
    # over the class-pair loops of both passes, ``per`` pieces before each: the hardware
    # prefetcher runs out during a block's arithmetic, so without this the next block's
    # load waited for DRAM. Prefetching from the exp pass alone: 1.08-1.27x at C = 100,
    # median 1.09x at C = 10 (same-process A/B, 2 threads); spread over both passes, with
    # one address computation per piece instead of a row-pointer and a loop per row:
    # 1.13x (median of 6 processes, 1.00-1.23x) at 5M x 10, 1.0-1.3x at 500,000 x 100
    # (bursts of a whole block's prefetches before one loop were slower in DRAM, 0.9x).
    # A hint only: scores unchanged.
    n_loops = (u - 1) // 2 + u // 2  # the class-pair loops of both passes prefetch
    n_loops = n_loops if n_loops > 0 else 1
    n_pieces, size = _prefetch_plan(units, block)
    per = (n_pieces + n_loops - 1) // n_loops
    if head is not None:
        per = 0
    per_max = per if entropy is None and method != RATIO else 0
    n_bad = 0
    for task in range(lo, hi):
        bad = 0
        # selects, not the builtin min: one function less to compile in a fresh process
        stop = (task + 1) * _BLOCKS_PER_TASK
        for b in range(task * _BLOCKS_PER_TASK, stop if stop < n_blocks else n_blocks):
            start = b * block
            m = block if start + block < n else n - start
            if head is None:
                _load_block(units, start, m, buffer, columns, True)
            else:
                _block_logits(head[0], head[1], head[2], XT, acc, start, m, w * u, w, columns)
            lanes = w * m
            for q in range(lanes):
                z = columns[0, q]
                top1[q] = z
                top2[q] = -np.inf
                check[q] = z * zero  # 0 if finite, NaN for NaN and +-inf
            j = 1
            ahead = start + block if start + block < n else n - 1
            piece = 0
            while j + 1 < u:  # two classes per pass: half the accumulators' traffic
                _prefetch(units, ahead, piece, per_max, size)
                piece += per_max
                for q in range(lanes):
                    p = columns[j, q]
                    s = columns[j + 1, q]
                    check[q] += p * zero + s * zero
                    hi = p if p > s else s
                    lo = p if p < s else s
                    a = top1[q]
                    smaller = a if a < hi else hi
                    t2 = top2[q]
                    t2 = t2 if t2 > lo else lo
                    top2[q] = t2 if t2 > smaller else smaller
                    top1[q] = a if a > hi else hi
                j += 2
            if j < u:
                for q in range(lanes):
                    z = columns[j, q]
                    check[q] += z * zero
                    a = top1[q]
                    smaller = a if a < z else z
                    t2 = top2[q]
                    top2[q] = t2 if t2 > smaller else smaller
                    top1[q] = a if a > z else z
            _finish_logits_max(top1, top2, check, w, m, row_max, row_second, row_check,
                               lane_max)
            for q in range(lanes):
                rest[q] = zero
            if entropy is not None:
                for q in range(lanes):
                    weighted[q] = zero
            if entropy is not None:
                for j in range(u):
                    for q in range(lanes):
                        t = columns[j, q] - lane_max[q]
                        t = t if t > _T_FLOOR else _T_FLOOR  # NaN too (its row is flagged)
                        e = exp32_in_range(t)
                        rest[q] += e if t < zero else zero
                        weighted[q] += e * t
            elif method != RATIO:
                j = 0
                while j + 1 < u:  # two classes per pass: half the accumulator's traffic
                    _prefetch(units, ahead, piece, per, size)
                    piece += per
                    for q in range(lanes):
                        mx = lane_max[q]
                        t = columns[j, q] - mx
                        t = t if t > _T_FLOOR else _T_FLOOR
                        s = columns[j + 1, q] - mx
                        s = s if s > _T_FLOOR else _T_FLOOR
                        e = exp32_in_range(t)
                        f = exp32_in_range(s)
                        rest[q] += (e if t < zero else zero) + (f if s < zero else zero)
                    j += 2
                if j < u:
                    for q in range(lanes):
                        t = columns[j, q] - lane_max[q]
                        t = t if t > _T_FLOOR else _T_FLOOR
                        e = exp32_in_range(t)
                        rest[q] += e if t < zero else zero
            bad += _finish_logits(columns, u, rest, weighted, w, m, row_second, row_max,
                                  row_check, method, entropy, out[start:])
        n_bad += bad
    return n_bad


def _scores_from_logits32(units, n_lanes, method, block, out):
    """Scores of each row of float32 logits (see ``_scores_from_logits32_tasks``)."""
    key, make_buffers = _block_scratch("logits", units, n_lanes, block, 0, np.float32)

    def make():  # the transpose buffer, its float view and the (9, lanes * block) buffers
        return (*make_buffers(), np.empty((9, n_lanes * block), dtype=np.float32), None, None)
    return run_tasks(_scores_from_logits32_tasks, _n_tasks(units.shape[0], block), units,
                     method, block, out, True if method == ENTROPY else None, None,
                     scratch=(key, make))


def linear_scores(X, W, b, n_classes, method, out):
    """Uncertainty scores (``method``: a method's code) of float32 embeddings ``X`` through
    a linear head (``W``, ``b``: ``linear.padded_weights``) into ``out``: bit for bit
    ``uncertainty_scores(logits, method, True, ...)`` of ``logits = linear.linear_logits(X,
    W, b)``, the logits made block by block where the kernel would load them (the same
    units and lanes as their ``lane_view``), never stored. A fresh process then compiles
    one kernel instead of the linear and the logits kernels. Returns the number of rows
    with non-finite logits (their score NaN)."""
    c = n_classes
    units, w = lane_view(np.empty((1, c), dtype=np.float32))  # the stored logits' units
    units = units[:0]
    block = block_rows_logits(c)
    d = X.shape[1]

    def make():  # no transpose buffer; columns, lanes, the head's XT and acc
        return (None, np.empty((c // w, w * block), dtype=np.float32),
                np.empty((9, w * block), dtype=np.float32),
                np.zeros((d, _LINEAR_ROWS), dtype=X.dtype),
                np.empty((4, _LINEAR_ROWS), dtype=X.dtype))
    return run_tasks(_scores_from_logits32_tasks, _n_tasks(X.shape[0], block), units, method,
                     block, out, True if method == ENTROPY else None, (X, W, b),
                     scratch=(("linear scores", c, d, block), make))


@njit(nogil=True, cache=True, fastmath=FASTMATH, **KERNEL)
def _scores_from_logits_tasks(logits, method, out, lo, hi):
    """Score each row of float64 logits (rows, C), C >= 2, through a stable log-softmax.

    With t_j = z_j - max(z) and s = sum_j exp(t_j): p_j = exp(t_j) / s, so
    entropy = log s - sum_j exp(t_j) t_j / s, least confidence = 1 - 1/s,
    margin = 1 - (1 - exp(t_2)) / s, ratio = exp(t_2), with t_2 the second largest.
    Nothing of shape (rows, C) is stored. Rows with a non-finite entry get NaN and are
    counted in the return value.
    """
    n, c = logits.shape
    n_bad = 0
    for i in range(lo * _ROWS_PER_TASK, min(n, hi * _ROWS_PER_TASK)):
        top1 = -np.inf
        top2 = -np.inf
        check = 0.0
        for j in range(c):
            z = logits[i, j]
            check += 0.0 if abs(z) <= _FLOAT64_MAX else 1.0  # NaN and +-inf fail
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


def _scores_from_logits(logits, method, out):
    """Scores of each row of (float64) logits (see ``_scores_from_logits_tasks``)."""
    return run_tasks(_scores_from_logits_tasks, _row_tasks(logits.shape[0]), logits, method, out)


def _row_tasks(n_rows):
    return (n_rows + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK


def uncertainty_scores(values, code, from_logits, atol, out):
    """Score a (rows, C) chunk by method ``code`` with the fastest kernel for its shape.

    Plain dispatch, no validation: returns the number of invalid rows (their ``out`` is NaN).
    """
    c = values.shape[1]
    if from_logits:
        if values.dtype == np.float32:
            units, n_lanes = lane_view(values)
            return _scores_from_logits32(units, n_lanes, code, block_rows_logits(c), out)
        return _scores_from_logits(values, code, out)
    if code != ENTROPY:
        units, n_lanes = lane_view(values)
        return _top2_from_probs(units, n_lanes, code, atol, block_rows(c), out)
    if values.dtype == np.float32:
        units, n_lanes = lane_view(values)
        return _entropy_from_probs32(units, n_lanes, atol, block_rows(c), out)
    return _entropy_from_probs(values, atol, out)
