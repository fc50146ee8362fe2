"""Linear heads, ``logits = X @ W + b``, with one fixed order of operations.

A BLAS GEMM rounds differently for different shapes, thread counts and CPUs (its kernels and
blockings are chosen per call), so the same row could get different logits in a 100-row and
a 1,000-row chunk, or under another ``OPENBLAS_CORETYPE``: 244 of 3,600 committee scores
differed by up to 1.8e-7 between chunk sizes on one machine. Here every logit is

    ((((b_k + x_0 w_0k) + x_1 w_1k) + x_2 w_2k) + ... + x_{d-1} w_{d-1,k})

evaluated left to right in the dtype of the embeddings, each product and sum rounded once
(IEEE 754). The kernel is compiled without fastmath: no reassociation (which would let LLVM
reorder the sum by the CPU's vector width) and no contraction (an FMA rounds once where
mul + add rounds twice, and not every CPU has FMA). So a row's logits depend only on the
row, W and b: not on the chunk, the thread count, the BLAS library or the CPU.

Speed comes from vectorising across rows instead: a block of 32 rows is transposed so that
one vector holds one feature of 32 rows, and four classes are accumulated at a time, each
vector lane running the sequential sum of its own row.
"""

import numpy as np
from numba import njit

from ._math import HELPER, KERNEL
from ._parallel import run_tasks

_ROWS = 32          # rows per block: the vector loop runs over them
_BLOCKS_PER_TASK = 32


@njit(**HELPER)
def _classes(XT, W, b, k0, d, acc):
    """Accumulate classes k0 .. k0 + 3 of the block's rows into acc (W and b have columns
    up to k0 + 3: ``padded_weights``)."""
    a0 = acc[0]
    a1 = acc[1]
    a2 = acc[2]
    a3 = acc[3]
    for r in range(_ROWS):
        a0[r] = b[k0]
        a1[r] = b[k0 + 1]
        a2[r] = b[k0 + 2]
        a3[r] = b[k0 + 3]
    for j in range(d):
        w0 = W[j, k0]
        w1 = W[j, k0 + 1]
        w2 = W[j, k0 + 2]
        w3 = W[j, k0 + 3]
        for r in range(_ROWS):
            x = XT[j, r]
            a0[r] += x * w0
            a1[r] += x * w1
            a2[r] += x * w2
            a3[r] += x * w3


@njit(nogil=True, cache=True, **KERNEL)
def _linear_logits_tasks(X, W, b, out, XT, acc, lo, hi):
    """``linear_logits`` for tasks lo <= task < hi (32 blocks of 32 rows each); returns 0.
    ``W`` and ``b``: ``padded_weights``. ``XT`` (d, 32) and ``acc`` (4, 32): scratch (a
    partial last block's unused rows, and the padding classes, hold values that are
    computed and never stored)."""
    n, d = X.shape
    c = out.shape[1]
    n_blocks = (n + _ROWS - 1) // _ROWS
    for task in range(lo, hi):
        # selects, not the builtin min: one function less to compile in a fresh process
        stop = (task + 1) * _BLOCKS_PER_TASK
        for blk in range(task * _BLOCKS_PER_TASK, stop if stop < n_blocks else n_blocks):
            first = blk * _ROWS
            m = _ROWS if first + _ROWS < n else n - first
            for r in range(m):
                for j in range(d):
                    XT[j, r] = X[first + r, j]
            for k0 in range(0, c, 4):
                kk = c - k0 if c - k0 < 4 else 4
                _classes(XT, W, b, k0, d, acc)
                for q in range(kk):
                    for r in range(m):
                        out[first + r, k0 + q] = acc[q, r]
    return 0


@njit(**HELPER)
def _block_logits(X, W, b, XT, acc, start, m, c, w, columns):
    """The logits of rows [start, start + m) of X (``linear_logits``' arithmetic:
    ``_classes``, 32 rows at a time) into a transposed block: class ``w j + h`` of row r at
    ``columns[j, w r + h]``, where ``uncertainty._load_block`` puts the units of w lanes of
    stored logits (the logits kernel's head mode, ``uncertainty.linear_scores``). ``W``,
    ``b``: ``padded_weights``; ``XT`` (d, 32) and ``acc`` (4, 32): scratch."""
    d = X.shape[1]
    for r0 in range(0, m, _ROWS):
        mm = _ROWS if r0 + _ROWS < m else m - r0
        for r in range(mm):
            for j in range(d):
                XT[j, r] = X[start + r0 + r, j]
        for k0 in range(0, c, 4):
            _classes(XT, W, b, k0, d, acc)
            for q in range(c - k0 if c - k0 < 4 else 4):
                unit = (k0 + q) // w
                lane = w * r0 + k0 + q - unit * w
                for r in range(mm):
                    columns[unit, lane + w * r] = acc[q, r]


def padded_weights(W, b):
    """``W`` (d, C) and ``b`` (C,) with zero classes appended up to a multiple of 4, as
    ``linear_logits`` reads them (C-contiguous; the arrays themselves when C is a multiple
    of 4 already).

    The kernel then accumulates four classes at a time everywhere: one vector loop to
    compile instead of four (0.2-0.3 s of a fresh process's first call), and no slower,
    since a group of fewer classes has fewer independent sums and waits on their latency.
    """
    d, c = W.shape
    c4 = -(-c // 4) * 4
    if c4 == c and W.flags.c_contiguous and b.flags.c_contiguous:
        return W, b
    Wp = np.zeros((d, c4), dtype=W.dtype)
    Wp[:, :c] = W
    bp = np.zeros(c4, dtype=b.dtype)
    bp[:c] = b
    return Wp, bp


def linear_logits(X, W, b, out):
    """out[i, k] = b[k] + sum_j X[i, j] W[j, k], summed in order j = 0, 1, ..., d - 1.

    X (n, d), W (d, C) and b (C,) share one float dtype (pass zeros for no bias); out is
    (n, C) of that dtype. Non-finite inputs propagate as they would in the formula. W and
    b may be ``padded_weights`` already (callers that score many chunks pad them once).
    """
    c = out.shape[1]
    if W.shape[1] < c or b.shape[0] < W.shape[1]:  # the kernel reads W[:, :c] and b[:c]
        raise ValueError(f"linear_logits: W {W.shape} and b {b.shape} for {c} classes")
    if W.shape[1] % 4 or not W.flags.c_contiguous or not b.flags.c_contiguous:
        W, b = padded_weights(W[:, :c], b[:c])
    n_blocks = (X.shape[0] + _ROWS - 1) // _ROWS
    d = X.shape[1]
    dtype = X.dtype

    def make():
        return np.zeros((d, _ROWS), dtype=dtype), np.empty((4, _ROWS), dtype=dtype)
    run_tasks(_linear_logits_tasks, (n_blocks + _BLOCKS_PER_TASK - 1) // _BLOCKS_PER_TASK,
              X, W, b, out, scratch=(("linear", d, dtype.str), make))
