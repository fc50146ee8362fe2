"""The per-partition step of distributed exact greedy k-center (``fastal.distributed``).

One call: lower each row's distance ``D`` to the centre set with new centres, and return the
partition's farthest row. The driver takes the largest of the partitions' answers (ties to
the lower global row), which is the single-machine greedy pick.

The distance has one fixed definition, so the picks cannot depend on how the pool is split,
on the thread count or on the order partitions answer in:

- the centre ``c`` is given in float64 in the metric's space (the row itself for l2, the row
  times its float64 inverse norm for cosine), and each row ``x`` is taken to that space as
  ``float64(x_j) * s`` (``s = 1`` for l2, which is exact);
- ``sq = sum_j (x_j s - c_j)^2`` in float64, summed in ``_intrinsics.lane_sums``' order
  (coordinate j into lane j mod 32, the lanes combined by halving: explicit vectors, no
  fast-math, the same bits on any CPU), the order ``fastal.kcenter``'s exact distances use;
- ``D = sqrt(sq)`` for l2, ``sq / 2`` for cosine (``1 - cos`` for unit rows).

``D`` is bit for bit the float64 distance of ``fastal.kcenter`` (its centre ``y_j t``, taken
to float64 and scaled there, is the ``c_j`` the driver sends), so the picks and covering
radii are the single machine's exactly, ties included.

The blocks are tasks of a serial kernel run on Python threads (``_parallel.run_tasks``,
not ``prange``, whose lowering compiles 2-4x slower); each writes its own rows and its own
block's partial result, merged in block order afterwards.
"""

import numpy as np
from numba import njit

from ._intrinsics import lane_sq
from ._math import KERNEL
from ._parallel import run_tasks

#: Rows per parallel block of the farthest-row reduction (only affects speed).
BLOCK = 4096


@njit(nogil=True, cache=True, **KERNEL)
def _add_centers_tasks(X, inv_norm, cosine, centres, mindist, weights, weighted, block_score,
                       block_pos, block_max, lo, hi):
    """``add_centers`` for blocks lo <= b < hi: lowers their rows' ``mindist`` and writes
    each block's best score, its position (the lowest among equal scores; -1 if every row is
    a centre) and its largest ``D`` into ``block_*[b]``. Returns 0."""
    n = X.shape[0]
    m = centres.shape[0]
    for b in range(lo, hi):
        top = -np.inf
        top_pos = -1
        top_dist = 0.0
        for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            current = mindist[i]
            if current < 0.0:
                continue
            scale = inv_norm[i] if cosine else 1.0
            for c in range(m):
                sq = lane_sq(X, i, scale, centres, c, 1.0)
                dist = 0.5 * sq if cosine else np.sqrt(sq)
                if dist < current:
                    current = dist
            mindist[i] = current
            score = current * weights[i] if weighted else current
            if score > top or top_pos < 0:
                top = score
                top_pos = i
            if current > top_dist:
                top_dist = current
        block_score[b] = top
        block_pos[b] = top_pos
        block_max[b] = top_dist
    return 0


def add_centers(X, inv_norm, cosine, centres, mindist, weights, weighted, best):
    """Lower ``mindist`` with the distances to the rows of ``centres``; report the farthest.

    Parameters
    ----------
    X : (n, d) float32 or float64
        The partition's rows.
    inv_norm : (n,) float64
        Inverse row norms (read only when ``cosine``).
    centres : (m, d) float64
        New centres in the metric's space (m may be 0: only the report).
    mindist : (n,) float64
        ``D`` of each row (``inf`` before any centre); ``-1`` marks a row that is itself a
        centre (labeled or picked): it is skipped and never reported.
    weights : (n,) float64
        Read when ``weighted``: the reported score is ``weights[i] * D[i]``.
    best : (3,) float64, out
        ``[score, position, max D]``: the largest score over rows that are not centres and
        its position (the lowest one among equal scores; ``-1`` when every row is a
        centre), and the largest ``D`` over those rows (0 when there are none).
    """
    centres = np.ascontiguousarray(centres, dtype=np.float64)  # ``lane_sq`` reads C rows
    n_blocks = -(-X.shape[0] // BLOCK)
    block_score = np.full(n_blocks, -np.inf)
    block_pos = np.full(n_blocks, -1, dtype=np.int64)
    block_max = np.zeros(n_blocks)
    run_tasks(_add_centers_tasks, n_blocks, X, inv_norm, cosine, centres, mindist, weights,
              weighted, block_score, block_pos, block_max)
    # merge in block order: a later block must be strictly better (lower row wins)
    top = -np.inf
    top_pos = -1
    top_dist = 0.0
    for score, pos, dist in zip(block_score.tolist(), block_pos.tolist(),
                                block_max.tolist()):
        if pos >= 0 and (top_pos < 0 or score > top):
            top = score
            top_pos = pos
        if dist > top_dist:
            top_dist = dist
    best[0] = top
    best[1] = top_pos
    best[2] = top_dist
