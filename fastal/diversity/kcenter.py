"""Exact greedy k-center (core-set) selection, accelerated by triangle-inequality pruning."""

from __future__ import annotations

import time

import numpy as np

from .._compiled import compiled
from .._config import CHUNK_BYTES, MIN_CHUNK_ROWS
from .._errors import ArgumentError, DataError
from .._kernels import kcenter as _k
from .._kernels import kcenter_lazy as _lazy
from .._kernels import kcenter_scan as _scan
from .._selection import Selection
from .._validation import check_finite, check_int as _check_int, check_l2_range, make_rng
from ..io.arrays import to_numpy
from ._faiss import knn_l2, query_block, single_threaded_faiss, small_search_blocks

_METRICS = ("l2", "cosine")
# FAISS candidates per row for the initial labeled search. The exact distance of each is
# recomputed; the last one certifies the nearest (see Notes). Two suffice: the certificate
# fails only when the two nearest labeled points are within float32 error of each other,
# and FAISS's k-selection gets slower with k.
_N_CANDIDATES = 2
# Worst-case relative error factor of FAISS's float32 ``|x|^2 + |y|^2 - 2 x.y`` (dot products
# of length d: gamma_d = d * u, plus a few roundings and the float32 cast of the inputs),
# doubled for safety. Multiplied by ``(|x - shift| + max |y - shift|)^2``.
_U32 = 2.0**-24
_MAX_GROUPS = 4096
_SPLIT_ITER = 3
_SPLIT_RADIUS = 0.8
_SPLIT_MIN_ROWS = 16
_SPLIT_MAX = 32
_KERNEL_ROWS = 1 << 14  # rows per exact-recomputation kernel call (25 bytes each of scratch)
_SEARCH_ROWS = 4096  # at most this many rows per FAISS search call
_SEARCH_VALUES = 1 << 17  # at least this many values per FAISS search call
_CONVERT_VALUES = 1 << 13  # float64 values per conversion step of non-float32 rows
_LABELED_INDEX_BYTES = 1 << 19  # labeled points per FAISS index: at least this many bytes,
_LABELED_INDEX_ROW_BYTES = 3  # or this many per pool row
# The lazy path's band rows meet the labeled points in chunks of up to this many bytes: each
# chunk is one more pass over the band (gathered, searched, recomputed), and the band is
# small (Rotten Tomatoes, 1,000 labeled 256-d points: one chunk instead of two, 10 % faster)
_BAND_LABELED_BYTES = CHUNK_BYTES
# ... searched by FAISS with a distance table of this many rows by as many labeled points
# (4 MiB, as a chunk): 5-10 % faster there than 256 x 256
_BAND_SEARCH_BLOCK = 1024
_UINT16_LABELS = 65535  # at most this many groups: group labels fit the uint16 rowdist
_LEVEL_ROW_BYTES = 3  # int16 group centres while they take at most this many bytes per row
_NO_GRID = np.empty((2, 0), dtype=np.float64)
_NO_LEVELS = np.empty((0, 0), dtype=np.int16)
_GROUP_SEED = 1234  # groups only change speed, never the result: a fixed seed is fine
_PATHS = ("lazy", "grouped", "scan", "small")
# Small jobs: at most this many coordinate visits N (k + L) d (at most ~5 ms of float64
# scans) run as plain full scans, labeled points and weights included: below it the other
# paths' set-up costs more than they save (2^23 visits: their time over the scans' 0.3-2.0x,
# median 1.0; 2^25: 0.2-1.4x, median 0.4-0.8; weighted alike since they take the lazy path;
# 20 pools, session 25 in bench/README.md). Fresh processes whose cache lacks the other
# paths' kernels run larger jobs as full scans too (the cold rule below).
_SMALL_JOB_WORK = 1 << 24
# Jobs without labels of at most this many coordinate visits N k d (~20-30 ms of float32
# scans on 2 threads) go to the float32 scans without trying the lazy path first: a first
# call in a fresh process then compiles none of the lazy path's kernels (~2 s), for up to
# ~20 ms more per warm call where the lazy path would have finished (200,000 x 32, k = 40:
# 8 ms lazy, 28 ms scans; clustered 40,000 x 16, k = 300: 28 ms with the lazy attempt,
# 33 ms without).
_SCAN_FIRST_WORK = 1 << 28
# Cold processes: when the kernels of the path a job would take are neither compiled in this
# process nor in Numba's cache (a fresh process with an empty cache: 2.5-4.5 s of compiling
# for the lazy path, the groups or the float32 scans, ~1 s for the full scans), jobs of at
# most this many coordinate visits N (k + L) d (0.4-1.2 s of float64 full scans on 2
# threads, measured from 1M x 16 to 20,000 x 768, float32 and float64 pools, with and
# without labels: 0.17-0.67 s per 2^31 visits since their sums are vectorised) run as full
# scans instead: the same picks, scores and radii (every path computes the same float64
# distances). Within a process, once such
# runs have taken _COLD_SCAN_SECONDS in all, the path's kernels are compiled instead, so a
# process making many calls pays at most about twice what the better choice would have cost
# it (the ski-rental rule); ``fastal warmup`` fills the cache beforehand.
_COLD_JOB_WORK = 1 << 32
_COLD_SCAN_SECONDS = 2.0
_cold_scans = [0.0]  # seconds of full scans run by the cold rule in this process
# Scan path (see _scan_kcenter): without a labeled set, when the groups have skipped under
# 1 - _SCAN_EVAL_SHARE of the row distances over their first _SCAN_PROBE_PICKS picks, the
# groups are dropped for full scans (same picks: both are exact).
_SCAN_PROBE_PICKS = 8
_SCAN_EVAL_SHARE = 0.95
# Before the groups are built, the same measure on a random sample of _SCAN_SAMPLE_ROWS rows
# (about 0.05 s): a share of at least _SCAN_SAMPLE_SHARE (the groups skip almost nothing:
# 1.000 on Gaussian data, 0.92-0.98 on clustered blobs, 0.5-0.93 on real embeddings) goes
# to the scans at once.
_SCAN_SAMPLE_ROWS = 16384
_SCAN_SAMPLE_SHARE = 0.995
_SCAN32_MAX_CANDIDATES = 1024  # rows whose interval reaches the top, per pick
# The float32 scans read a half image (2 bytes per value) of jobs of at least this many picks
# and N k d coordinate visits: making it costs a few passes, more where the memory it takes
# is touched for the first time. Against the float32 pool on 2 threads: Gaussian 20,000 x 50,
# k = 16 1.3x slower, k = 40 1.1x faster; Fashion-MNIST PCA-50 (60,000 x 50) k = 20 the
# same, k = 50 / 100 / 200 1.1x / 1.3x / 1.4x faster; Gaussian 100,000 x 2-32, k = 200
# 1.3-2.2x faster.
_HALF_MIN_PICKS = 16
_HALF_MIN_WORK = 1 << 26
_IMAGE_BYTES = 1 << 30  # the float32 scans' image of a float64 or cosine pool, at most
# Lazy path (see _lazy_kcenter). The first band holds at least _LAZY_BAND_MIN rows and
# _LAZY_BAND_PER_PICK per pick; each widening doubles it. Past _LAZY_MAX_BAND of the pool
# the bounds are not pruning (the covering radius falls fast: clustered data), and the
# triangle-inequality groups take over.
_LAZY_BAND_MIN = 1024
_LAZY_BAND_PER_PICK = 4
# After a widening, the band is widened again at once (no picks in between, so no distances
# to the picks for the new rows) while the keys above its threshold number between
# _LAZY_BAND_LATE and _LAZY_BAND_YIELD per pick still to make: the picks would run dry late,
# where its new rows would meet many picks (knock-downs took 6-9 % of the keys on real
# embeddings). A band far shorter than that runs dry early, where widening costs little,
# and at once it would overshoot (unstructured data: 2 % of a first band's keys above its
# threshold; widened at once, 35,062 rows instead of 25,202 for Gaussian 300k x 128).
_LAZY_BAND_YIELD = 1.25
_LAZY_BAND_LATE = 0.5
_LAZY_MAX_BAND = 0.125
_LAZY_SMALL_POOL = 1 << 15  # below this many rows the lazy path is never abandoned
_LAZY_PROJECT_AFTER = 4  # picks before the band's growth per pick is projected
_LAZY_GROWTH_MAX_BAND = 0.5  # the band's power-law growth projected past this: give up
_LAZY_SCAN_LABELED = 64  # up to this many labeled points, each row meets all of them
_BOUND_BLOCK_ROWS = 1 << 15  # rows per block of the bounds' search (sorted by probe)
_UNEVEN_LISTS = 4  # lists whose expected candidates per row exceed L / 4: probes alone
_BOUND_THREADS = 2  # Python threads running single-threaded FAISS searches for the bounds


def kcenter(X, k, *, labeled=None, metric="l2", seed=0, weights=None, chunk_rows=None):
    """Pick ``k`` pool rows by exact greedy k-center (the core-set strategy).

    Each pick is the pool row farthest from the current centre set (the labeled points and
    the rows picked so far), which greedily minimises the covering radius
    (Sener & Savarese, 2018).

    Parameters
    ----------
    X : array-like of shape (N, d)
        Pool embeddings. float32 and float64 are used as given; any other real or boolean
        dtype is converted to float32. Must be finite, and for ``metric="l2"`` within
        about ``1e19 / sqrt(d)`` in absolute value (squared distances are kept in float32;
        larger values are a DataError: scale them down). A non C-contiguous array is copied.
    k : int
        Number of rows to pick, ``1 <= k <= n``, n the number of unlabeled pool rows.
    labeled : None, array-like of int of shape (L,), bool of shape (N,), or array of shape (L, d)
        The labeled set. Told apart by dimension and dtype:

        - 1-D integer: positions of labeled rows *in the pool*. Those rows are centres: they
          are never picked and their min-distance is 0. Repeats are allowed.
        - 1-D bool of length N: a mask of labeled pool rows (same meaning).
        - 2-D real of shape (L, d): labeled embeddings that are *not* pool rows (converted
          like ``X``). Pool rows equal to one of them get min-distance 0 but stay pickable.
        - None or an empty array: no labeled set (see Notes for the first pick).
    metric : {"l2", "cosine"}
        ``"l2"``: Euclidean distance. ``"cosine"``: cosine distance ``1 - cos(x, y)``,
        computed as ``||x/|x| - y/|y| ||^2 / 2`` (equal in exact arithmetic, but without
        cancellation, so exact duplicates are at distance exactly 0). Zero vectors are an
        error with ``"cosine"``.
    seed : int, numpy.random.Generator or None
        Only used without a labeled set: the first centre is
        ``int(np.random.default_rng(seed).integers(N))``.
    weights : array-like of shape (N,), optional
        Non-negative finite weights. Each pick is then the argmax of
        ``weights[i] * mindist[i]`` (weighted k-center, e.g. uncertainty x distance).
    chunk_rows : int, optional
        Rows per chunk in the input checks and the initial FAISS passes (those are further
        capped to 512 KiB-1 MiB of float32 per call). Default: about 4 MiB of input per
        chunk.

    Returns
    -------
    Selection
        ``indices`` (k,) int64 in pick order; ``scores`` (k,) float32, the (weighted)
        min-distance of each pick when it was picked (``inf`` for a random first pick, which
        has no centre to be distant from); ``method="kcenter"``; ``n_pool=N``;
        ``extra["covering_radius"]`` (k,) float64, the largest (unweighted) min-distance
        over the pool after each pick (centres count as 0), in the units of ``metric``.

    Raises
    ------
    FastalError
        Invalid ``X``, ``k``, ``labeled``, ``metric``, ``weights`` or ``chunk_rows``: wrong
        shape or dtype, NaN/inf, zero vectors with cosine, positions out of range, ``k``
        larger than the number of unlabeled rows, a labeled set covering the whole pool.

    Notes
    -----
    Greedy rule: with ``D(i) = min_{c in C} dist(x_i, c)`` over the centre set ``C``, pick
    ``argmax_i w_i D(i)`` over rows that are not centres (``w_i = 1`` unweighted), add it to
    ``C`` and repeat. Ties go to the lower row index. When every remaining row has
    ``D(i) = 0`` (duplicate-heavy pools), this keeps picking the lowest-index rows that are
    neither labeled nor picked, so ``k`` distinct rows are always returned.

    The result is exactly that of the plain greedy loop with float64 distances
    (``tests/reference_diversity.py``); only the work differs. Small jobs, of at most
    2^24 coordinate visits ``N (k + L) d`` (e.g. 2,000 x 16 rows, 500 labeled, k = 10),
    run float64 full scans: every row's ``D`` from the labeled points in one pass (four
    at a time), then one pass per pick (labeled sets and weights alike; a few ms at most,
    where the paths below would cost as much in set-up). Jobs of up to 2^32 visits
    (0.4-1.2 s of full scans on 2 threads) run the same full scans while the kernels of
    the path they would take are neither compiled in this process nor in Numba's cache
    (a first call then compiles one small kernel, about 1 s, instead of 2.5-6 s), until
    such runs have taken 2 s in the process (``fastal warmup`` fills the cache ahead of
    time). Larger jobs: three exact algorithms, chosen per call from measured pruning:

    **Lazy evaluation** (tried first). The pick is ``argmax w D``, and an
    *upper* bound ``U(i) >= D(i)`` is cheap: the distance to any one centre, and it stays
    valid as centres are added. Every row gets one from a few candidates (the ~``sqrt(L)``
    labeled points chosen as probes and the list of labeled points around its nearest
    probe (the probes alone when the lists are very uneven), found in float32 by one kernel
    and recomputed exactly: O(sqrt(L) d) per row instead of the O(L d) of a full labeled
    search; without a labeled set, the exact distance to the first pick). Only the *band*
    of rows with the largest bounds gets its exact ``D`` (FAISS candidates with the error
    certificate of step 1 below) and enters a heap; a
    heap top is compared only with the picks it has not seen, and it is the pick once it
    is exact and at least the band's threshold, which bounds every row left outside. When
    the exact top falls below the threshold, the band doubles. On embeddings and
    unstructured data the covering radius falls slowly and a band of a few rows per pick
    suffices: no O(N) work per pick at all. On clustered data each pick empties a cluster
    from the top and the band would grow to most of the pool; once the band, or its growth
    per pick projected to pick ``k``, passes 1/8 of the pool (or the band grows like a
    power of about 1 of the picks, projected past half of it), the call starts over with
    the triangle-inequality groups below (the first random pick is drawn once, before
    either). Exactness does not depend on any of these choices. Weighted calls rank the
    band by ``w U`` (rounded up: a bound of the score ``w D``), and their covering radii
    (the largest ``D`` after each pick, no longer the next pick's score) come afterwards
    from a second band ranked by ``U`` and a heap of exact ``D`` whose top, compared with
    the picks up to ``t``, is the radius after pick ``t``.

    **Full scans** (without a labeled set: first for jobs of at most 2^28 visits ``N k d``,
    else when the lazy path gives up). Each pick is one pass over X in storage order: every
    row's distance to the new centre, the min-update of ``D`` and the running argmax, fused;
    the whole greedy is one kernel call whose threads meet at barriers. The pass is in
    float32 (vectorised, any summation order) and keeps each row's squared ``D`` as an
    interval of float32 bounds (a rigorous error bound of the float32 sum); only the rows
    whose upper bound reaches the largest lower bound get their float64 ``D``, so the pick
    is exact (8 bytes per pool row). Weighted, a row is also a candidate when its bound of
    ``w^2 D^2`` (cosine: ``w D``) reaches the largest lower bound of it less a relative
    2^-40; the pick is the largest exact ``w D`` among the candidates, the covering radius
    the largest exact ``D``. float64 and cosine pools are read through a float32 image (the
    rows rounded, or normalised then rounded: 4 ``d`` bytes per row, at most 1 GiB), each
    row's bounds widened by its own and the centre's distance to their images (the triangle
    inequality). Near-duplicate pools, where too many intervals overlap, go to the groups
    instead (weighted calls: to float64 full scans). Measured faster than the groups on
    every pool without labels, clustered ones included. Pools whose image would exceed 1
    GiB: float64 passes (8 bytes per row), chosen when the groups below skip under 0.5 % of
    the row distances over 8 picks on a sample of 16,384 rows, or under 5 % over their own
    first 8 picks.

    **Triangle-inequality groups** (clustered data with a labeled set):

    1. ``D`` for the labeled set comes from exact FAISS flat searches of the pool in
       chunks (no N x L matrix, no copy of the labeled set: one float32 chunk of it at a
       time, at most ``max(512 KiB, 3 bytes per pool row)``, each chunk lowering ``D``).
       FAISS's float32 ``|x|^2 + |y|^2 - 2 x.y`` can mis-rank close neighbours, so the
       exact float64 distance of its 2 best candidates is recomputed, and a row whose 2nd
       candidate is not provably farther than the best one (worst-case float32 error
       bound) is rescanned exactly against every point of the chunk.
    2. The pool is split into groups: cells around the labeled points when
       ``sqrt(N) / 2 <= L <= 4096`` (the labeled search already gives each row its
       nearest labeled point, no extra pass), else cells around about ``sqrt(N)`` random
       pool rows (fewer for small ``k``), found by one more FAISS pass. Each cell is split
       inside itself by farthest-first seeds (until every row is within 0.8x the median
       cell radius of a seed, at most one seed per 16 rows, 32 per cell) and 3 Lloyd
       steps over the cell's rows only. A group's centre is its mean as int16 levels over
       the pool's range while those take at most 3 bytes per pool row, else the member row
       nearest the mean. For a new centre ``c``, a group with centre ``m`` and radius
       ``r`` is skipped when ``d(c, m) - r >= max D`` over the group, and a row at
       distance ``r_i`` from ``m`` is skipped when ``d(c, m) - r_i >= D(i)``: by the
       triangle inequality neither can get closer to ``c`` than to the current centres.
       These bounds hold for any ``m``, so the grouping changes the speed, never the
       result. Each group keeps its best row, so the global argmax is a max over groups.
    3. ``D`` is stored rounded up to float32 (an upper bound, exact under updates
       because rounding up is monotone), so a row with a smaller stored value has a
       strictly smaller ``D``; when several rows share the top value (or, weighted, when
       their score bounds overlap), their float64 ``D`` is recomputed against the labeled
       points and the picks, and the largest wins. The reported scores and covering radii
       are float64 recomputations too.

    Extra memory of the lazy path: 4 bytes per pool row (the float32 bound, rounded up),
    16 bytes per band row (heap: float64 key, int32 row and picks seen) and bounded scratch
    (the labeled lists as float32, at most ``max(512 KiB, 3 bytes per row)`` at a time, two
    search buffers of at most 1 byte per row each); no copy of the pool in any precision.
    Measured 7.8-9.1 bytes per row at 200k x 32 (``tests/test_kcenter.py``). The grouped
    path: 10 bytes per pool row (``D`` as float32 rounded up, the
    row-to-centre distance as a uint16 fraction of its group's radius rounded up, int32
    group permutation; int64 beyond 2**31 rows), kept in group order so that the per-pick
    scans are sequential (the group labels live in the row-to-centre buffer until the rows
    are sorted, ``D`` is permuted in place with an N-bit mask, and until then the
    permutation's memory holds the search buffers), plus 8 bytes per row for the inverse
    norms with ``"cosine"``, plus about 80 bytes per group (at most 3 bytes per row of
    int16 centres) and bounded scratch: one chunk of the labeled set as float32 (at most
    ``max(512 KiB, 3 bytes per row)``), FAISS's distance table (256-1024 x 256 blocks: at
    most ``max(256 KiB, 2 bytes per row)`` instead of its default 16 MiB) and the rows being
    searched (inside the permutation). Measured: 12.8-15.7 bytes per pool row in all from
    200k to 1M rows (``bench/README_kcenter.md``). The pool is never copied or reordered.

    References
    ----------
    O. Sener and S. Savarese, "Active Learning for Convolutional Neural Networks: A Core-Set
    Approach", ICLR 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from fastal.diversity import kcenter
    >>> X = np.array([[0.0], [1.0], [10.0], [4.0]], dtype=np.float32)
    >>> sel = kcenter(X, 2, labeled=[0])
    >>> sel.indices.tolist(), sel.scores.tolist()
    ([2, 3], [10.0, 4.0])
    >>> sel.extra["covering_radius"].tolist()
    [4.0, 1.0]
    """
    return _kcenter(X, k, labeled=labeled, metric=metric, seed=seed, weights=weights,
                    chunk_rows=chunk_rows)


# --------------------------------------------------------------------------- validation


def _as_embeddings(a, name):
    a = to_numpy(a, name)
    if a.dtype.kind not in "biuf":
        raise DataError(f"{name} must be a real numeric array; got dtype {a.dtype}")
    if a.ndim != 2:
        raise DataError(f"{name} must be 2-D (rows, dims); got shape {a.shape}")
    if a.dtype != np.float32 and a.dtype != np.float64:
        a = a.astype(np.float32)
    return np.ascontiguousarray(a)


def _row_norms(block):
    """Row norms in float64. The reference computes them the same way (exact duplicates
    must normalise to bit-identical vectors)."""
    block = block.astype(np.float64)
    return np.sqrt(np.sum(block * block, axis=1))


def _inverse_norms(a, name, chunk):
    inv = np.empty(a.shape[0], dtype=np.float64)
    for start in range(0, a.shape[0], chunk):
        norms = _row_norms(a[start:start + chunk])
        zero = np.flatnonzero(norms == 0.0)
        if zero.size:
            raise DataError(f"{name} row {start + int(zero[0])} is a zero vector; "
                            "cosine distance is undefined for it")
        inv[start:start + chunk] = 1.0 / norms
    return inv


def _parse_labeled(labeled, n_pool, d):
    """-> (positions int64 sorted unique or None, embeddings 2-D or None)."""
    if labeled is None:
        return None, None
    lab = np.asarray(labeled)
    if lab.size == 0 and lab.ndim in (1, 2):
        if lab.ndim == 2 and lab.shape[1] != d:
            raise DataError(f"labeled embeddings must have {d} columns like X; "
                            f"got shape {lab.shape}")
        return None, None
    if lab.ndim == 1:
        if lab.dtype.kind == "b":
            if lab.shape[0] != n_pool:
                raise DataError(f"labeled as a boolean mask must have length {n_pool} "
                                f"(pool rows); got length {lab.shape[0]}")
            return np.flatnonzero(lab).astype(np.int64), None
        if lab.dtype.kind not in "iu":
            raise DataError("labeled as 1-D must hold integer row positions in the pool "
                            f"(or be a boolean mask); got dtype {lab.dtype}")
        lo, hi = int(lab.min()), int(lab.max())
        if lo < 0 or hi >= n_pool:
            bad = lo if lo < 0 else hi
            raise DataError(f"labeled positions must be in [0, {n_pool}); got {bad}")
        return np.unique(lab.astype(np.int64)), None
    if lab.ndim == 2:
        emb = _as_embeddings(lab, "labeled")
        if emb.shape[1] != d:
            raise DataError(f"labeled embeddings must have {d} columns like X; "
                            f"got shape {emb.shape}")
        return None, emb
    raise DataError("labeled must be None, 1-D row positions, a 1-D boolean mask or 2-D "
                    f"embeddings (L, d); got shape {lab.shape}")


def _parse_weights(weights, n_pool):
    if weights is None:
        return None
    w = np.asarray(weights)
    if w.dtype.kind not in "biuf":
        raise DataError(f"weights must be real numbers; got dtype {w.dtype}")
    if w.shape != (n_pool,):
        raise DataError(f"weights must have shape ({n_pool},) (one per pool row); "
                        f"got shape {w.shape}")
    # float64 always (exact for float32 input, and every score is computed in float64):
    # one specialisation of each weighted kernel, the one ``fastal warmup`` compiles
    w = np.ascontiguousarray(w, dtype=np.float64)
    if not np.isfinite(w).all():
        raise DataError("weights must be finite; got NaN or inf at position "
                        f"{int(np.flatnonzero(~np.isfinite(w))[0])}")
    if (w < 0).any():
        raise DataError("weights must be non-negative; got "
                        f"{float(w[np.flatnonzero(w < 0)[0]])} at position "
                        f"{int(np.flatnonzero(w < 0)[0])}")
    return w


def _default_cells(n_pool, k):
    """About ``sqrt(N)`` cells at k >= 1000, fewer for fewer picks (down to ``sqrt(N) / 4``).

    The cell assignment costs O(N G d); the cells are then split (up to 32 groups each), so
    the per-pick pruning depends little on their number. Measured on 1000-cluster data:
    sqrt(N) cells best at 1M x 128 (10.5 s vs 12.0 s with sqrt(N) / 2 and 13.9 s with
    2 sqrt(N)); at 200k x 64, 2 sqrt(N) was 10 % faster than sqrt(N).
    """
    scale = min(max(np.sqrt(k / 1000.0), 0.25), 1.0)
    return int(min(max(1, round(scale * np.sqrt(n_pool))), n_pool))


def _labeled_groups_pay(n_pool, n_labeled):
    """Whether to centre the groups on the labeled points.

    The initial labeled search then gives every row its group and its distance to the group
    centre for free (no assignment pass over the pool to random cells). It pays when the labeled
    set is large enough for tight groups (``L >= sqrt(N) / 2``) and small enough that the
    per-pick distances from the new centre to every group centre (``O(L d)``) stay cheap.
    """
    return n_labeled > 0 and 0.5 * np.sqrt(n_pool) <= n_labeled <= _MAX_GROUPS


def _search_rows(chunk, d, n_pool):
    """Rows per FAISS search call, a power of two: at least 2**17 values (512 KiB of
    float32), more while the copy fits in half of the permutation's memory (where it
    lives, 2 bytes per pool row), at most 4096 rows and ``chunk``.

    Below about 2**17 values per call, FAISS's search was measured 2-2.4x slower per row
    (d = 64: 1024 vs 2048 rows; d = 128: 512 vs 1024; d = 384: 256 vs 512); 4096-row calls
    were the default before (no slower, measured in session 2).
    """
    rows = 1 << int(np.ceil(np.log2(max(1.0, _SEARCH_VALUES / d))))
    fits = 2 * n_pool // (4 * d)
    if fits >= 1:
        rows = max(rows, 1 << int(np.log2(fits)))
    return int(max(1, min(chunk, rows, _SEARCH_ROWS)))


def _super_block_rows(n_pool, search_rows):
    """Rows per ``labeled_mindist`` call (a multiple of ``search_rows``): up to 16k rows
    (25 bytes of candidate buffers each), at most about N / 32 so that the buffers stay
    small next to the per-row state."""
    return search_rows * max(1, min(_KERNEL_ROWS, n_pool // 32) // search_rows)


def _labeled_chunk_rows(n_labeled, n_pool, d, least_bytes=None):
    """Labeled points (or cell centres) per FAISS search pass: at most
    ``max(least_bytes, 3 bytes per pool row)`` of float32 (``_LABELED_INDEX_BYTES``,
    512 KiB, by default), in equal chunks.

    Each chunk costs one more pass over the pool (7 % more search time for two chunks of
    500 instead of one of 1000 at 250k x 384, 30 % for three), so the labeled set is split
    only when it would be large next to the pool: L = 1000 at d = 384 is 1.5 MB, 6 bytes
    per row of a 250k pool.
    """
    if least_bytes is None:
        least_bytes = _LABELED_INDEX_BYTES
    budget = max(least_bytes, _LABELED_INDEX_ROW_BYTES * n_pool)
    most = max(_N_CANDIDATES + 1, budget // (4 * d))
    n_chunks = -(-n_labeled // most)
    return int(-(-n_labeled // n_chunks))


def _metric_rows(block, inv, cosine):
    """Rows in the metric's space as float64: unit rows for cosine (``inv``: their inverse
    norms), the rows themselves for l2."""
    out = block.astype(np.float64)
    if cosine:
        out *= inv[:, None]
    return out


def _shifted_points(src, rows, inv, cosine, shift, out):
    """Rows ``src[rows]`` in the metric's space minus ``shift``, rounded once to float32
    into ``out``, in small steps; returns the largest float64 norm before the rounding."""
    step = max(1, _CONVERT_VALUES // src.shape[1])
    norm_max = 0.0
    for a in range(0, rows.shape[0], step):
        part = rows[a:a + step]
        block = _metric_rows(src[part], inv[part] if cosine else None, cosine)
        block -= shift
        norm_max = max(norm_max, float(np.sqrt((block * block).sum(axis=1)).max()))
        out[a:a + step] = block
    return norm_max


def _search_block(pool, begin, stop, inv_norm, cosine, shift, out):
    """Rows ``begin:stop`` in the metric's space (unit rows for cosine), minus ``shift``,
    as float32 with one rounding per coordinate (the error model of the certificate),
    written into ``out[:stop - begin]`` (returned)."""
    out = out[:stop - begin]
    if pool.dtype == np.float32 and not cosine:
        # float32 x - float32 shift is the exact difference rounded once
        np.subtract(pool[begin:stop], shift.astype(np.float32), out=out)
        return out
    step = max(1, _CONVERT_VALUES // pool.shape[1])
    for a in range(begin, stop, step):
        b = min(a + step, stop)
        block = _metric_rows(pool[a:b], inv_norm[a:b] if cosine else None, cosine)
        block -= shift
        out[a - begin:b - begin] = block  # one rounding to float32
    return out


# --------------------------------------------------------------------------- driver


def _kcenter(X, k, *, labeled=None, metric="l2", seed=0, weights=None, chunk_rows=None,
             n_groups=None, grouping=None, stats=None, path=None, small_jobs=True):
    """``kcenter`` with the algorithm exposed (tests, benchmarks).

    ``path``: ``"lazy"`` (band of upper bounds, ``_lazy_kcenter``; falls back to
    ``"grouped"`` when the band grows past ``_LAZY_MAX_BAND`` of the pool, or weighted
    without a labeled set to the float32 scans, then ``"small"``),
    ``"grouped"`` (triangle-inequality groups; unweighted without a labeled set, falls
    back to ``"scan"`` when they prune nothing), ``"scan"`` (``_scan_kcenter``; no labeled
    set), ``"small"`` (``_small_kcenter``: float64 full scans, any labeled set and
    weights) or None (``"small"`` for jobs of at most ``_SMALL_JOB_WORK`` coordinate
    visits, the float32 scans for jobs without labels of at most ``_SCAN_FIRST_WORK``
    (neither rule when ``small_jobs`` is False: ``fastal warmup``), else lazy unless
    ``grouping`` is given).

    ``grouping``: ``"labeled"`` (cells around the labeled points, split), ``"labeled-cells"``
    (the same cells, unsplit), ``"cells"`` (``n_groups`` cells around random pool rows,
    split) or None (chosen by ``_labeled_groups_pay``).

    ``stats``, if a dict, receives diagnostics (evaluated row distances, fallbacks).
    """
    pool = _as_embeddings(X, "X")  # validated before FAISS's block sizes are touched
    with small_search_blocks(query_block(pool.shape[0])):
        return _kcenter_run(pool, k, labeled=labeled, metric=metric, seed=seed, weights=weights,
                            chunk_rows=chunk_rows, n_groups=n_groups, grouping=grouping,
                            stats=stats, path=path, small_jobs=small_jobs)


def _kcenter_run(X, k, *, labeled, metric, seed, weights, chunk_rows, n_groups, grouping,
                 stats, path, small_jobs=True):
    """The body of ``_kcenter`` (FAISS's block sizes already set)."""
    pool = _as_embeddings(X, "X")
    n_pool, d = pool.shape
    if n_pool == 0 or d == 0:
        raise DataError(f"X must have at least one row and one column; got shape {pool.shape}")
    if metric not in _METRICS:
        raise ArgumentError(f"metric must be one of {_METRICS}; got {metric!r}")
    cosine = _k.metric_flag(metric == "cosine")  # True or None: see _k.metric_flag
    k = _check_int(k, "k", 1)
    if k > n_pool:
        raise ArgumentError(f"k must be <= the number of pool rows ({n_pool}); got {k}")
    if chunk_rows is None:
        chunk = max(MIN_CHUNK_ROWS, CHUNK_BYTES // (d * pool.dtype.itemsize))
    else:
        chunk = _check_int(chunk_rows, "chunk_rows", 1)
    positions, emb = _parse_labeled(labeled, n_pool, d)
    n_unlabeled = n_pool - (0 if positions is None else positions.size)
    if n_unlabeled == 0:
        raise ArgumentError(f"labeled covers all {n_pool} pool rows; nothing left to pick")
    if k > n_unlabeled:
        raise ArgumentError(f"k must be <= the number of unlabeled pool rows ({n_unlabeled}); "
                            f"got {k}")
    w = _parse_weights(weights, n_pool)
    largest = check_finite(pool, "X", chunk)
    if emb is not None:
        largest = max(largest, check_finite(emb, "labeled", chunk))
    if not cosine:
        check_l2_range(largest, d, "X" if emb is None else "X and labeled")

    # Inverse norms for cosine; for l2 an empty placeholder the kernels never read.
    if cosine:
        inv_norm = _inverse_norms(pool, "X", chunk)
    else:
        inv_norm = np.empty(0, dtype=np.float64)

    # The labeled points are rows of a 2-D array, never copied: pool rows (labeled by
    # position) or the given embeddings, scaled by their inverse norms for cosine.
    if positions is not None:
        lab_src, lab_rows, lab_inv = pool, positions, inv_norm
    elif emb is not None:
        lab_src, lab_rows = emb, np.arange(emb.shape[0], dtype=np.int64)
        lab_inv = _inverse_norms(emb, "labeled", chunk) if cosine else inv_norm
    else:
        lab_src, lab_rows, lab_inv = pool, np.empty(0, dtype=np.int64), inv_norm
    n_labeled = lab_rows.shape[0]

    def labeled_points(begin, stop):
        """Labeled points ``begin:stop`` in the metric's space, float64."""
        rows = lab_rows[begin:stop]
        return _metric_rows(lab_src[rows], lab_inv[rows] if cosine else None, cosine)

    rng = make_rng(seed)  # drawn before anything else: documented first pick
    first_row = -1 if n_labeled else int(rng.integers(n_pool))

    # One shift for the labeled points, the centroids and the pool rows: it keeps FAISS's
    # float32 |x|^2 + |y|^2 - 2 x.y accurate for data far from the origin. A float32 value,
    # so that x - shift of float32 rows is exact-then-rounded once.
    shift = np.zeros(d)
    if n_labeled:
        step = max(1, _CONVERT_VALUES // d)
        for begin in range(0, n_labeled, step):
            shift += labeled_points(begin, begin + step).sum(axis=0)
        shift = (shift / n_labeled).astype(np.float32).astype(np.float64)

    clock = _Clock()
    auto_path = path is None and grouping is None and n_groups is None  # ours to choose
    auto = auto_path and w is None
    # without labels, pools go to the float32 scans when the lazy path gives up (float64
    # and cosine pools through a float32 image, when it fits _IMAGE_BYTES), weighted ones
    # too (the scans then compare bounds of w^2 sq, see kcenter_scan._key)
    scan32 = (auto_path and (w is None or _scan.weights_fit(w)) and not n_labeled
              and _scan32_fits(pool, cosine))
    scans_first = scan32 and small_jobs and n_pool * k * d <= _SCAN_FIRST_WORK
    cold = False
    if auto_path and small_jobs:
        work = n_pool * (k + n_labeled) * d
        if work <= _SMALL_JOB_WORK:
            path = "small"
        elif work <= _COLD_JOB_WORK and _cold_scans[0] < _COLD_SCAN_SECONDS:
            if scans_first:
                ready = compiled(_scan._scan32_tasks, pool.dtype, {"weights": w is None})
            else:
                ready = compiled(_lazy._lazy_picks, pool.dtype, {"w": w is None})
            cold = not ready
            path = "small" if cold else None
    if path == "small":
        started = time.perf_counter()
        sel = _small_kcenter(pool, k, cosine, inv_norm, positions, lab_src, lab_rows, lab_inv,
                             w, first_row, clock, stats)
        if cold:
            _cold_scans[0] += time.perf_counter() - started
            if stats is not None:
                stats.update(cold=True)
        return sel
    if scans_first:
        sel = _scan32_kcenter(pool, k, cosine, inv_norm, first_row, chunk, clock, stats, w)
        if sel is not None:
            return sel
        # near-duplicates: the lazy path in full, then the groups (no second attempt)
    if path is None:
        path = "lazy" if grouping is None else "grouped"
    if path not in _PATHS:
        raise ArgumentError(f"path must be one of {_PATHS}; got {path!r}")
    if path == "scan":
        if n_labeled:
            raise ArgumentError("path 'scan' is without a labeled set")
        return _scan_kcenter(pool, k, cosine, inv_norm, first_row, chunk, clock, stats, w=w)
    if path == "lazy":
        sel = _lazy_kcenter(pool, k, cosine, inv_norm, positions, lab_src, lab_rows, lab_inv,
                            first_row, shift, chunk, clock, stats,
                            small_pools_give_up=scan32 and not scans_first and w is None,
                            w=w)
        if sel is not None:
            return sel
        clock.lap("lazy (abandoned)")
        if scan32 and not scans_first:
            # float32 scans beat the groups on every measured pool without labels, blobs
            # included (1M x 128, k = 1,000: 34 s against 44 s)
            sel = _scan32_kcenter(pool, k, cosine, inv_norm, first_row, chunk, clock, stats,
                                  w)
            if sel is not None:
                return sel
        elif (auto and not n_labeled and n_pool >= 4 * _SCAN_SAMPLE_ROWS
              and k > _SCAN_PROBE_PICKS):
            share = _sampled_eval_share(pool, metric)
            if stats is not None:
                stats.update(sampled_eval_share=share)
            clock.lap("sample")
            if share >= _SCAN_SAMPLE_SHARE:
                return _scan_kcenter(pool, k, cosine, inv_norm, first_row, chunk, clock, stats,
                                     try32=False)
        if w is not None and not n_labeled and auto_path:
            # weighted, no labeled set, the float32 scans given up or not taken: float64
            # full scans (faster than the groups on every measured pool: Fashion-MNIST raw,
            # k = 1,000: 5.0 against 9.2 s; 200,000 x 32: 0.9 against 6.2 s)
            return _small_kcenter(pool, k, cosine, inv_norm, positions, lab_src, lab_rows,
                                  lab_inv, w, first_row, clock, stats)

    if grouping is None:
        grouping = "labeled" if _labeled_groups_pay(n_pool, n_labeled) else "cells"
    if grouping not in ("labeled", "labeled-cells", "cells") or (
            grouping != "cells" and not n_labeled):
        raise ArgumentError(f"grouping must be 'labeled' or 'labeled-cells' (need a labeled "
                            f"set) or 'cells'; got {grouping!r}")
    by_labeled = grouping in ("labeled", "labeled-cells")
    split = grouping in ("labeled", "cells")
    if by_labeled:
        # centres of unsplit labeled cells: the labeled points themselves
        centroids = None if split else labeled_points(0, n_labeled)
        n_groups = n_labeled
    else:
        if n_groups is None:
            n_groups = _default_cells(n_pool, k)
        n_groups = _check_int(n_groups, "n_groups", 1, n_pool)
        # cells centred on random pool rows (any points would do), split like labeled cells
        cell_rows = np.unique(
            np.random.default_rng(_GROUP_SEED).integers(n_pool, size=n_groups))
        n_groups = cell_rows.shape[0]
    # Row state, 10 bytes per row: mindist (4, float32 rounded up), rowdist (2), perm (4).
    # The group label of each row lives in rowdist's buffer until the rows are sorted by
    # group (up to 65,535 groups; beyond, only when a caller asks for them, an int64 array).
    mindist = np.empty(n_pool, dtype=np.float32)
    rowdist = np.empty(n_pool, dtype=np.uint16)
    labels = rowdist if n_groups <= _UINT16_LABELS else np.empty(n_pool, dtype=np.int64)
    search_rows = _search_rows(chunk, d, n_pool)
    # perm (filled only once the rows are sorted by group) lends its memory to the search
    # buffers until then
    perm = np.empty(n_pool, dtype=np.int32 if n_pool < 2**31 else np.int64)
    scratch = _Scratch(perm)
    buf = scratch.take((search_rows, d), np.float32)  # the rows being searched, shifted
    if grouping == "cells":
        _assign_cells(pool, inv_norm, cosine, shift, cell_rows, labels, mindist, scratch, buf)
        clock.lap("assign")

    mindist.fill(np.inf)
    n_fallback = 0
    if n_labeled:
        nearest = labels if by_labeled else np.empty(0, dtype=labels.dtype)
        n_fallback = _search_labeled(pool, inv_norm, cosine, shift, lab_src, lab_rows, lab_inv,
                                     mindist, nearest, scratch, buf, clock)
    del buf, scratch  # views of perm, which group_order fills next
    if positions is not None:
        mindist[positions] = -1.0

    offsets = np.empty(n_groups + 1, dtype=np.int64)
    _k.group_order(labels, n_groups, perm, offsets)
    del labels
    if n_labeled:
        _k.permute_in_place(mindist, perm, np.zeros((n_pool + 7) // 8, dtype=np.uint8))
    if split:
        offsets, cq, grid, rep = _split_cells(pool, inv_norm, cosine, perm, offsets, mindist,
                                              rowdist, None if by_labeled else cell_rows, k,
                                              chunk)
        n_groups = offsets.shape[0] - 1
        by_labeled = False  # rows are now at distance rowdist from their sub-group centre
    else:  # unsplit labeled cells, centred on the labeled points (exact float centres)
        cq, grid = centroids, np.stack([np.zeros(d), np.ones(d)])
        rep = None  # levels, no rows (see _k._centre)
    radius = np.empty(n_groups, dtype=np.float64)
    if by_labeled:
        _k.rowdist_from_mindist(mindist, cosine, offsets, rowdist, radius)
    else:
        _k.centroid_distances(pool, inv_norm, cosine, perm, offsets, cq, grid, rep, rowdist,
                              radius)
    clock.lap("groups")

    weighted = w is not None
    w_arr = w  # None unweighted: the kernels then compile no weighted code
    gstats = np.empty((n_groups, 4), dtype=np.float64)  # see _k._scan_group
    gbest_pos = np.empty(n_groups, dtype=np.int64)
    dcm = np.empty(n_groups, dtype=np.float64)
    active = np.empty(n_groups, dtype=np.int64)
    if n_labeled:
        _k.group_stats(mindist, w_arr, perm, offsets, gstats, gbest_pos)
    else:
        # every non-empty group must be scanned against the first centre; an empty group
        # (a Lloyd sub-group left without rows) is never scanned, so it starts as "all
        # centres"
        gstats[:] = -np.inf
        gstats[:, _k.GMAX] = np.where(np.diff(offsets) > 0, np.inf, -1.0)
        gbest_pos.fill(-1)

    indices = np.empty(k, dtype=np.int64)
    scores = np.empty(k, dtype=np.float64)
    cover = np.empty(k, dtype=np.float64)
    n_eval = 0
    for t in range(k):
        if t == 0 and not n_labeled:
            row = first_row
            score = np.inf
            pos = int(_k.position_of(perm, row))
        else:
            # exact: min-distances are stored rounded up to float32, near-ties at the
            # top are re-resolved in float64 against the labeled points and the picks
            pos, score = _k.resolve_pick(pool, inv_norm, cosine, lab_src, lab_rows, lab_inv,
                                         indices, t, perm, offsets, mindist, w_arr,
                                         gstats, gbest_pos)
            row = int(perm[pos])
            if not weighted and t > 0:
                # unweighted, this pick is the row of largest D: its score is the radius
                # left by the previous pick
                cover[t - 1] = score
        # the picked row's group must be rescanned: its best row just left
        forced = int(np.searchsorted(offsets, pos, side="right") - 1)
        mindist[pos] = -1.0
        indices[t] = row
        scores[t] = score
        center = pool[row].astype(np.float64)
        if cosine:
            center *= inv_norm[row]  # bit-identical to the kernels' x * inv_norm
        n_eval += _k.add_center(pool, inv_norm, cosine, center, forced, perm, offsets,
                                cq, grid, rep, radius, rowdist, mindist, w_arr, gstats,
                                gbest_pos, dcm, active)
        if (auto and t + 1 == _SCAN_PROBE_PICKS and t + 1 < k and not n_labeled
                and n_eval >= _SCAN_EVAL_SHARE * (t + 1) * (n_pool - t - 1)):
            # nothing prunes (unstructured data): each pick reads every row in group
            # order, a cache miss per row; full scans in storage order are 3-4x faster
            clock.lap("picks (groups abandoned)")
            if stats is not None:
                stats.update(groups_abandoned_at=t + 1, groups_row_evaluations=n_eval)
            del mindist, rowdist, perm
            return _scan_kcenter(pool, k, cosine, inv_norm, first_row, chunk, clock, stats,
                                 try32=not scan32)
        if weighted or t == k - 1:
            cover[t] = _k.exact_cover(pool, inv_norm, cosine, lab_src, lab_rows, lab_inv,
                                      indices, t + 1, perm, offsets, mindist, gstats)
    clock.lap("picks")

    if stats is not None:
        stats.update(path="grouped", n_groups=n_groups, grouping=grouping, row_evaluations=n_eval,
                     fallback_rows=n_fallback, seconds=clock.laps)
    return Selection(indices=indices, scores=scores.astype(np.float32), method="kcenter",
                     n_pool=n_pool, extra={"covering_radius": cover})


def _sampled_eval_share(pool, metric):
    """The share of row distances the groups evaluate (1: they skip none) over the first
    ``_SCAN_PROBE_PICKS`` picks on a random sample of ``_SCAN_SAMPLE_ROWS`` pool rows."""
    n_pool = pool.shape[0]
    rng = np.random.default_rng([_GROUP_SEED, n_pool])  # speed only, never the picks
    rows = np.sort(rng.choice(n_pool, _SCAN_SAMPLE_ROWS, replace=False))
    sample_stats = {}
    _kcenter_run(pool[rows], _SCAN_PROBE_PICKS, labeled=None, metric=metric, seed=0,
                 weights=None, chunk_rows=None, n_groups=None, grouping=None,
                 stats=sample_stats, path="grouped")
    return sample_stats["row_evaluations"] / (_SCAN_PROBE_PICKS * _SCAN_SAMPLE_ROWS)


def _scan_kcenter(pool, k, cosine, inv_norm, first_row, chunk, clock, stats, try32=True,
                  w=None):
    """Exact greedy k-center without a labeled set by full scans
    (``fastal._kernels.kcenter_scan``): each pick is one pass over X in storage order that
    lowers every row's distance to the centre set and finds the largest. float32 passes
    with certified bounds (``_scan32_kcenter``), 8 bytes per pool row (and a float32 image,
    4d bytes per row, for float64 and cosine pools); when their candidates outgrow
    ``_SCAN32_MAX_CANDIDATES`` (near-duplicate pools) or the image ``_IMAGE_BYTES``,
    float64 distances, 8 bytes per pool row. ``w``: weighted (the float32 scans when
    ``_scan.weights_fit``)."""
    if try32 and _scan32_fits(pool, cosine) and (w is None or _scan.weights_fit(w)):
        sel = _scan32_kcenter(pool, k, cosine, inv_norm, first_row, chunk, clock, stats, w)
        if sel is not None:
            return sel
    n_pool = pool.shape[0]
    mindist = np.full(n_pool, np.inf)
    indices, scores, cover = _scan.picks(pool, inv_norm, cosine, first_row, np.inf, mindist, k,
                                         w)
    clock.lap("scan")
    if stats is not None:
        stats.update(path="scan", row_evaluations=k * n_pool, seconds=clock.laps)
    return Selection(indices=indices, scores=scores.astype(np.float32), method="kcenter",
                     n_pool=n_pool, extra={"covering_radius": cover})


def _small_kcenter(pool, k, cosine, inv_norm, positions, lab_src, lab_rows, lab_inv, w,
                   first_row, clock, stats):
    """Exact greedy k-center of a small job by float64 full scans
    (``fastal._kernels.kcenter_scan``): every row's ``D`` is lowered to each labeled point,
    then each pick is one pass that lowers it to the new centre and finds the largest
    ``w_i D_i``. The same float64 distances as every other path, so the same picks."""
    n_pool = pool.shape[0]
    mindist = np.full(n_pool, np.inf)
    if positions is not None:
        mindist[positions] = -1.0  # labeled pool rows are centres
    row, score = first_row, np.inf
    if lab_rows.shape[0]:
        score, row, _ = _scan.lower_to(pool, inv_norm, cosine, lab_src, lab_inv, lab_rows,
                                       mindist, w)
    indices, scores, cover = _scan.picks(pool, inv_norm, cosine, row, score, mindist, k, w)
    clock.lap("scan")
    if stats is not None:
        stats.update(path="small", row_evaluations=(k + lab_rows.shape[0]) * n_pool,
                     seconds=clock.laps)
    return Selection(indices=indices, scores=scores.astype(np.float32), method="kcenter",
                     n_pool=n_pool, extra={"covering_radius": cover})


def _scan32_fits(pool, cosine):
    """Whether the float32 scans take this pool: float32 l2 pools always; others through a
    float32 image of ``4 N d`` bytes, at most ``_IMAGE_BYTES``."""
    if pool.dtype == np.float32 and not cosine:
        return True
    return 4 * pool.shape[0] * pool.shape[1] <= _IMAGE_BYTES


def _scan32_kcenter(pool, k, cosine, inv_norm, first_row, chunk, clock, stats, w=None):
    """``_scan_kcenter`` in float32 (``fastal._kernels.kcenter_scan.scan32``): each row
    keeps float32 lower and upper bounds of its squared distance to the centre set (a
    float32 pass with a rigorous error bound), and only the rows whose upper bound reaches
    the largest lower bound get their exact float64 distance (kept between picks while they
    stay candidates). The whole greedy is one kernel call (the threads meet at barriers,
    not in Python: ~0.1-0.2 ms per pick saved). The passes read an image of the pool in
    IEEE halves (``_scan._half_rows``: the rows scaled by a power of two and rounded, with
    each row's distance to its image, which widens its bounds), half the bytes of float32,
    when it pays (``_half_pays``); else, or when its candidates outgrow
    ``_SCAN32_MAX_CANDIDATES`` (images too coarse for the pool's distances), the pool
    itself (float32 l2) or a float32 image (``_scan.float32_image``). None when those
    candidates outgrow it too (near-duplicate pools: the groups then, or the float64
    scans for an explicit ``path="scan"``). ``w``: weighted (``scan32``'s ``weights``)."""
    n_pool, d = pool.shape
    e = None
    if _half_pays(n_pool, d, k):
        e = _scan.half_scale(pool, inv_norm, cosine)
    if e is not None:
        result, scan_stats = _scan.scan32(pool, k, first_row, _SCAN32_MAX_CANDIDATES,
                                          inv_norm, cosine, half=e, weights=w)
        if result is not None:
            return _scan32_selection(result, scan_stats, "float16", n_pool, k, clock, stats)
        if stats is not None:
            stats.update(half_abandoned_at=scan_stats["abandoned_at"],
                         half_candidates=scan_stats["candidates"])
        clock.lap("half scans (abandoned)")
    image = radius = None
    if pool.dtype != np.float32 or cosine:
        image, radius = _scan.float32_image(pool, inv_norm, cosine, chunk)
        clock.lap("float32 image")
    result, scan_stats = _scan.scan32(pool, k, first_row, _SCAN32_MAX_CANDIDATES,
                                      inv_norm, cosine, image, radius, weights=w)
    if result is None:
        if stats is not None:
            stats.update(scan32_abandoned_at=scan_stats["abandoned_at"],
                         scan32_candidates=scan_stats["candidates"])
        clock.lap("float32 scans (abandoned)")
        return None
    return _scan32_selection(result, scan_stats, "float32", n_pool, k, clock, stats)


def _half_pays(n_pool, d, k):
    """Whether the float32 scans read a half image: it fits ``_IMAGE_BYTES`` and the job is
    large enough (``_HALF_MIN_PICKS``, ``_HALF_MIN_WORK``)."""
    return (k >= _HALF_MIN_PICKS and n_pool * k * d >= _HALF_MIN_WORK
            and 2 * _scan.half_blocks(n_pool) * _scan.HALF_BLOCK * d <= _IMAGE_BYTES)


def _scan32_selection(result, scan_stats, precision, n_pool, k, clock, stats):
    """The ``Selection`` of a finished ``scan32`` (and its stats)."""
    indices, scores, cover = result
    clock.lap("float32 scans")
    if stats is not None:
        stats.update(path="scan", precision=precision, row_evaluations=k * n_pool,
                     exact_candidates=scan_stats["exact_candidates"], seconds=clock.laps)
    return Selection(indices=indices, scores=scores.astype(np.float32), method="kcenter",
                     n_pool=n_pool, extra={"covering_radius": cover})


def _assign_cells(pool, inv_norm, cosine, shift, cell_rows, labels, mindist, scratch, buf):
    """Nearest cell centre (pool rows ``cell_rows``) of every row into ``labels``, the
    centres searched in bounded chunks. ``mindist`` is scratch: the best squared distance so
    far (FAISS's float32; any assignment is valid, it only shapes the groups)."""
    n_pool, d = pool.shape
    search_rows = buf.shape[0]
    mindist.fill(np.inf)
    found = scratch.take((search_rows, 1), np.int64)
    found_sq = scratch.take((search_rows, 1), np.float32)
    n_cells = cell_rows.shape[0]
    cell_chunk = _labeled_chunk_rows(n_cells, n_pool, d)
    for first, _, points, _ in _point_chunks(pool, cell_rows, inv_norm, cosine, shift,
                                             cell_chunk):
        for begin in range(0, n_pool, search_rows):
            stop = min(begin + search_rows, n_pool)
            block = _search_block(pool, begin, stop, inv_norm, cosine, shift, buf)
            knn_l2(block, points, 1, found_sq[:stop - begin], found[:stop - begin])
            closer = found_sq[:stop - begin, 0] < mindist[begin:stop]
            mindist[begin:stop][closer] = found_sq[:stop - begin, 0][closer]
            labels[begin:stop][closer] = found[:stop - begin, 0][closer] + first
        del points  # before the next chunk's array exists


def _search_labeled(pool, inv_norm, cosine, shift, lab_src, lab_rows, lab_inv, mindist,
                    nearest, scratch, buf, clock):
    """Lower ``mindist`` (initially inf) to the exact distance to the labeled set, and set
    ``nearest`` (if not empty) to each row's nearest labeled position. The labeled points
    are searched one bounded float32 chunk at a time (see ``_k.labeled_mindist``).
    Returns the number of rows rescanned exactly (fallbacks)."""
    n_pool, d = pool.shape
    n_labeled = lab_rows.shape[0]
    search_rows = buf.shape[0]
    err_coef = 2.0 * (d + 8) * _U32
    lab_chunk = _labeled_chunk_rows(n_labeled, n_pool, d)
    # FAISS calls run back to back over a super-block, then one kernel call handles the
    # whole super-block: FAISS and Numba bring separate OpenMP runtimes, and alternating
    # between them at every small chunk costs a thread hand-over each time (measured 3x
    # slower when FAISS's threads spin, i.e. faiss imported before fastal).
    block_rows = _super_block_rows(n_pool, search_rows)
    cand_buf = scratch.take(block_rows * _N_CANDIDATES, np.int64)
    cand_sq_buf = scratch.take(block_rows * _N_CANDIDATES, np.float32)
    fallback = scratch.take(block_rows, np.int32)
    n_fallback = 0
    for first, last, points, norm_max in _point_chunks(lab_src, lab_rows, lab_inv, cosine,
                                                       shift, lab_chunk):
        for outer in range(0, n_pool, block_rows):
            outer_stop = min(outer + block_rows, n_pool)
            rows = outer_stop - outer
            cand, cand_sq = _candidates(
                points, cand_buf, cand_sq_buf, outer, outer_stop, search_rows,
                lambda begin, stop: _search_block(pool, begin, stop, inv_norm, cosine, shift,
                                                  buf))
            clock.lap("search")
            fallback[:rows] = 0
            _k.labeled_mindist(pool, outer, inv_norm, cosine, lab_src, lab_rows[first:last],
                               lab_inv, first, cand, cand_sq, shift, norm_max, err_coef,
                               mindist, nearest, fallback[:rows])
            n_fallback += int(fallback[:rows].sum())
            clock.lap("labeled")
        del points  # before the next chunk's array exists
    return n_fallback


def _split_cells(pool, inv_norm, cosine, perm, offsets, mindist, rowdist, cell_rows, k,
                 chunk):
    """Split each cell (rows in group order) into sub-groups: farthest-first seeds, then a
    few Lloyd steps over the cell's rows only. Cells are loose (one labeled point may sit
    among several clusters); seeds are added until every row of the cell is within a
    fraction of the median cell radius, at most one per _SPLIT_MIN_ROWS rows.

    ``cell_rows``: the pool rows at the cell centres, or None for cells centred on the
    labeled points (then ``mindist`` is each row's distance to its centre). Reorders
    ``perm`` and ``mindist`` within each cell; ``rowdist`` is scratch. Returns the
    sub-groups' ``(offsets, cq, grid, rep)`` (see ``_k.lloyd_cells``).
    """
    n_pool, d = pool.shape
    n_cells = offsets.shape[0] - 1
    radius = np.empty(n_cells, dtype=np.float64)
    if cell_rows is None:
        _k.rowdist_from_mindist(mindist, cosine, offsets, rowdist, radius)
        far_key = mindist
    else:
        _k.centroid_distances(pool, inv_norm, cosine, perm, offsets, _NO_LEVELS, _NO_GRID,
                              cell_rows, rowdist, radius)
        far_key = rowdist
    sizes = np.diff(offsets)
    split_radius = _SPLIT_RADIUS * float(np.median(radius[sizes > 0]))
    # fewer picks amortise less splitting: up to 32 groups per cell at k >= 1000
    split_max = int(np.clip(round(_SPLIT_MAX * np.sqrt(k / 1000.0)), 2, _SPLIT_MAX))
    max_seeds = np.clip(sizes // _SPLIT_MIN_ROWS, 1, split_max).astype(np.int64)
    seed_offsets = np.zeros(n_cells + 1, dtype=np.int64)
    np.cumsum(max_seeds, out=seed_offsets[1:])
    seed_pos = np.empty(int(seed_offsets[-1]), dtype=np.int64)
    n_seeds = np.empty(n_cells, dtype=np.int64)
    _k.seed_cells(pool, inv_norm, cosine, perm, far_key, offsets, max_seeds, seed_offsets,
                  split_radius, seed_pos, n_seeds)
    sub_offsets = np.zeros(n_cells + 1, dtype=np.int64)
    np.cumsum(n_seeds, out=sub_offsets[1:])
    n_groups = int(sub_offsets[-1])
    # A centre only has to be a point (the bounds hold for any point), and there can be up
    # to 32 per cell: stored as int16 levels over the pool's range (2 bytes per coordinate,
    # within half a level of the mean) while those take at most _LEVEL_ROW_BYTES per pool
    # row, else as the member row nearest the mean (8 bytes per group; looser groups, more
    # row evaluations per pick).
    sub_counts = np.empty(n_groups, dtype=np.int64)
    if n_groups * d * 2 <= _LEVEL_ROW_BYTES * n_pool:
        grid = _centroid_grid(pool, cosine, chunk)
        cq = np.empty((n_groups, d), dtype=np.int16)
        rep = None  # levels, no rows (see _k._centre)
    else:
        grid, cq = _NO_GRID, _NO_LEVELS
        rep = np.empty(n_groups, dtype=np.int64)
    _k.lloyd_cells(pool, inv_norm, cosine, perm, mindist, offsets, seed_pos, seed_offsets,
                   sub_offsets, _SPLIT_ITER, cq, grid, rep, sub_counts, rowdist)
    sub_group_offsets = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(sub_counts, out=sub_group_offsets[1:])
    return sub_group_offsets, cq, grid, rep


def _centroid_grid(pool, cosine, chunk):
    """``grid`` (2, d): origin and step of int16 levels ``-32767..32767`` spanning each
    coordinate's range over the pool (unit rows for cosine: [-1, 1]), so every mean of pool
    rows is on it."""
    d = pool.shape[1]
    if cosine:
        lo, hi = np.full(d, -1.0), np.full(d, 1.0)
    else:
        lo, hi = np.full(d, np.inf), np.full(d, -np.inf)
        for start in range(0, pool.shape[0], chunk):
            block = pool[start:start + chunk]
            np.minimum(lo, block.min(axis=0), out=lo)
            np.maximum(hi, block.max(axis=0), out=hi)
    step = (hi - lo) / 65534.0
    step[step <= 0.0] = 1.0  # a constant coordinate: any step
    return np.stack([lo + 32767.0 * step, step])


def _lazy_kcenter(pool, k, cosine, inv_norm, positions, lab_src, lab_rows, lab_inv, first_row,
                  shift, chunk, clock, stats, small_pools_give_up=False, w=None):
    """Exact greedy k-center by lazy evaluation (``fastal._kernels.kcenter_lazy``), or None
    when the band of candidate rows grows past ``_LAZY_MAX_BAND`` of the pool (pools under
    ``_LAZY_SMALL_POOL`` rows never give up unless ``small_pools_give_up``).

    1. Every row gets an upper bound of its distance to the labeled set: the nearest of a few
       candidates (the labeled points in the list of its nearest probe, about ``sqrt(L)``
       probes), O(sqrt(L) d) per row instead of O(L d) (``_labeled_upper``). Without a
       labeled set, the distance to the first (random) pick (from a float32 sum with its
       error bound for float32 l2 pools).
    2. The rows with the largest bounds form the band: their exact distance to the labeled set
       (FAISS candidates with the error certificate of ``_search_labeled``) and to the picks
       so far is computed, and they enter a heap.
    3. Picks come from the heap (``_lazy.lazy_picks``); a top row is compared only with the
       picks it has not seen. When the exact top falls below the band's threshold, the band
       is doubled (steps 2-3 again).

    Weighted (``w``): the band and the heap rank rows by their score ``D w`` (the bounds
    ``U w``, rounded up), and the covering radii, the largest ``D`` after each pick, come
    from a second band and heap ranked by ``D`` (``_lazy.lazy_radii``) once the picks are
    made.
    """
    n_pool, d = pool.shape
    n_labeled = lab_rows.shape[0]
    # relative margin over the float64 summation error of a d-term sum of squares (any order)
    inflate = 1.0 + (2 * d + 8) * 2.0**-53
    upper = np.empty(n_pool, dtype=np.float32)
    n_unlabeled = n_pool - (0 if positions is None else positions.size)
    # unweighted, one pick past k: its score is the covering radius after pick k
    target = min(k + 1 if w is None else k, n_unlabeled)
    picked = np.empty(target + 1, dtype=np.int64)
    scores = np.empty(target + 1, dtype=np.float64)
    t = 0
    if n_labeled:
        _labeled_upper(pool, inv_norm, cosine, shift, lab_src, lab_rows, lab_inv, inflate,
                       chunk, upper)
        if positions is not None:
            upper[positions] = -1.0
    else:
        _lazy.distance_to_row(pool, inv_norm, cosine, first_row, inflate, upper)
        upper[first_row] = -1.0
        picked[0] = first_row
        scores[0] = np.inf
        t = 1
    if w is not None:  # the band's bounds: U w rounded up (fl(U w) >= fl(D w): monotone)
        band_upper = np.empty_like(upper)
        for start in range(0, n_pool, chunk):  # (bounded temporaries)
            part = upper[start:start + chunk]
            band = _ceil32_array(part.astype(np.float64) * w[start:start + chunk])
            band[part < 0.0] = part[part < 0.0]  # centres stay -1
            band_upper[start:start + chunk] = band
    else:
        band_upper = upper
    clock.lap("bounds")

    def exact_keys(rows, t):
        """The band rows' exact ``D`` given the labeled set and the first t picks."""
        key = np.full(rows.shape[0], np.inf)
        fallback = 0
        if n_labeled:
            fallback = _complete_labeled(pool, rows, inv_norm, cosine, shift, lab_src,
                                         lab_rows, lab_inv, chunk, key)
        if t:
            _lazy.rows_picked_mindist(pool, rows, inv_norm, cosine, picked, t, key, images)
        return key, fallback

    t_first = t
    hist = np.empty(1 << 16, dtype=np.int32)
    hkey, hrow, hdone = _empty_heap(n_pool)
    n_heap = 0
    n_band = 0
    band_at = (0, 0)  # (picks, band rows) at the first widening past the first picks
    theta = np.inf
    evaluated = np.zeros(2, dtype=np.int64)  # row-to-pick distances, knock-downs
    images = _lazy.pick_images(pool, cosine, target + 1)
    n_fallback = 0
    widenings = 0
    short_widenings = 0
    short = False  # the band's keys above its threshold cannot last to the last pick
    new_keys, new_rows = [], []  # band rows not yet on the heap, compared with t picks
    while True:
        if not short:
            keys = np.concatenate(new_keys) if new_keys else np.empty(0)
            rows = np.concatenate(new_rows) if new_rows else np.empty(0, np.int64)
            new_keys, new_rows = [], []
            if hkey.shape[0] < n_heap + rows.shape[0]:
                hkey, hrow, hdone = (_grown(a, n_heap, n_heap + rows.shape[0])
                                     for a in (hkey, hrow, hdone))
            t, n_heap = _lazy.lazy_picks(pool, inv_norm, cosine, images, keys, rows, hkey,
                                         hrow, hdone, n_heap, theta, picked, scores, t,
                                         target, evaluated, w)
            del keys, rows
            if t == target:
                break
        # widen the band: at least double it (by half when it is short before any pick
        # came from it: it just fell short of the picks' needs)
        want = (max(_LAZY_BAND_MIN, n_band // 2) if short
                else max(_LAZY_BAND_MIN, _LAZY_BAND_PER_PICK * k, n_band))
        new_theta, n_new, n_outside = _lazy.band_threshold(band_upper, want, hist)
        # Measured pruning: rows knocked down from the top per pick so far, projected to the
        # last pick. On clustered data each pick empties a whole cluster from the top and
        # the band would grow to most of the pool: give up early, the groups prune there.
        # (The band's own growth per pick is no measure: on unstructured data its early
        # widenings are mostly rows whose bound was loose, settled once and never again.)
        picks_seen = t - t_first
        projected = n_band + evaluated[1] * (target - t) / max(picks_seen, 1)
        # The band's growth as a power of the picks, from the first widening past the first
        # picks to this one, at least twice as many picks later: about t^0.6-0.75 on
        # unstructured data and embeddings, t^1.1-1.3 on clustered data (a cluster's worth of
        # rows per pick). Projected to the last pick with a margin (half the pool): clustered
        # data is given up at its second or third widening instead of the fifth or sixth.
        grown = n_band + n_new
        power = (np.log(grown / band_at[1]) / np.log(t / band_at[0])
                 if band_at[0] and t >= 2 * band_at[0] else 0.0)
        if picks_seen >= _LAZY_PROJECT_AFTER and not band_at[0]:
            band_at = (t, grown)
        grown_projected = grown * (target / max(t, 1)) ** power
        if (n_pool >= _LAZY_SMALL_POOL or small_pools_give_up) and (
                grown > _LAZY_MAX_BAND * n_pool
                or (picks_seen >= _LAZY_PROJECT_AFTER
                    and projected > _LAZY_MAX_BAND * n_pool)
                or (power > 0.0 and grown_projected > _LAZY_GROWTH_MAX_BAND * n_pool)):
            if stats is not None:
                stats.update(lazy_band_abandoned=grown, lazy_picks_done=t,
                             lazy_band_projected=int(projected),
                             lazy_band_growth_projected=int(grown_projected))
            return None
        rows = np.flatnonzero(band_upper >= np.float32(new_theta))  # into the band
        band_upper[rows] = -2.0
        n_new = rows.shape[0]
        key, fallback = exact_keys(rows, t)
        n_fallback += fallback
        if w is not None:
            key *= w[rows]  # the score (float64, as every path computes it)
        new_keys.append(key)
        new_rows.append(rows)
        del rows, key
        n_band += n_new
        widenings += 1
        # rows left outside have upper < new_theta; none left: the heap decides alone
        theta = new_theta if n_outside > n_new else -np.inf
        above = np.count_nonzero(hkey[:n_heap] >= theta) + sum(
            np.count_nonzero(a >= theta) for a in new_keys)
        short = bool(theta > -np.inf and _LAZY_BAND_LATE * (target - t) <= above
                     < _LAZY_BAND_YIELD * (target - t))
        short_widenings += short
        clock.lap("band")
    clock.lap("picks")

    indices = picked[:k].copy()
    cover = np.empty(k, dtype=np.float64)
    if w is None:
        cover[:-1] = scores[1:k]
        cover[-1] = scores[k] if target > k else 0.0
    else:
        del band_upper, hkey, hrow, hdone
        radius_band = _lazy_cover(pool, k, n_pool, t_first, upper, exact_keys, images,
                                  picked, cover, hist, inv_norm, cosine, evaluated,
                                  small_pools_give_up)
        if radius_band[0] is None:
            if stats is not None:
                stats.update(lazy_radius_band_abandoned=radius_band[1])
            return None
        if stats is not None:
            stats.update(radius_band_rows=radius_band[0],
                         radius_band_widenings=radius_band[1])
        clock.lap("radii")
    if stats is not None:
        stats.update(path="lazy", band_rows=n_band, band_widenings=widenings,
                     band_widenings_at_once=short_widenings,
                     row_evaluations=int(evaluated[0]), knock_downs=int(evaluated[1]),
                     fallback_rows=n_fallback,
                     seconds=clock.laps)
    return Selection(indices=indices, scores=scores[:k].astype(np.float32), method="kcenter",
                     n_pool=n_pool, extra={"covering_radius": cover})


def _lazy_cover(pool, k, n_pool, t, upper, exact_keys, images, picked, cover, hist, inv_norm,
                cosine, evaluated, small_pools_give_up):
    """The covering radius after each of the ``k`` weighted ``picked`` rows into ``cover``:
    the rows with the largest unweighted bounds ``upper`` form a band, their exact ``D``
    enter a heap (``_lazy.lazy_radii``), the band doubles when the exact top falls below
    its threshold. Returns ``(band rows, widenings)``, or ``(None, band rows)`` when the
    band would grow past ``_LAZY_MAX_BAND`` of the pool (the rule of the picks' band)."""
    if t == 0:
        t = 1  # the radius after pick 1 and later; without labels t is 1 already
    hkey, hrow, hdone = _empty_heap(n_pool)
    n_heap = 0
    n_band = 0
    theta = np.inf
    keys = np.empty(0)
    rows = np.empty(0, np.int64)
    widenings = 0
    while True:
        if hkey.shape[0] < n_heap + rows.shape[0]:
            hkey, hrow, hdone = (_grown(a, n_heap, n_heap + rows.shape[0])
                                 for a in (hkey, hrow, hdone))
        t, n_heap = _lazy.lazy_radii(pool, inv_norm, cosine, images, keys, rows, hkey, hrow,
                                     hdone, n_heap, theta, picked, cover, t, k, evaluated)
        if t > k:
            return n_band, widenings
        if n_heap == 0 and theta == -np.inf:  # every row is a centre: radius 0
            cover[t - 1:] = 0.0
            return n_band, widenings
        want = max(_LAZY_BAND_MIN, _LAZY_BAND_PER_PICK * k, n_band)
        theta, n_new, n_outside = _lazy.band_threshold(upper, want, hist)
        if ((n_pool >= _LAZY_SMALL_POOL or small_pools_give_up)
                and n_band + n_new > _LAZY_MAX_BAND * n_pool):
            return None, n_band + n_new
        rows = np.flatnonzero(upper >= np.float32(theta))
        upper[rows] = -2.0
        keys, _ = exact_keys(rows, t)
        n_band += rows.shape[0]
        widenings += 1
        theta = theta if n_outside > rows.shape[0] else -np.inf


def _empty_heap(n_pool):
    """A band's heap, grown by ``_grown``: 16 bytes per band row (float64 key, int32 row
    (int64 past 2^31 rows) and picks seen)."""
    row_type = np.int32 if n_pool < 2**31 else np.int64
    return (np.empty(0, dtype=np.float64), np.empty(0, dtype=row_type),
            np.empty(0, dtype=np.int32))


def _ceil32_array(values):
    """The smallest float32 >= each of ``values`` (float64, >= 0 or inf)."""
    out = values.astype(np.float32)
    low = out.astype(np.float64) < values
    out[low] = np.nextafter(out[low], np.float32(np.inf))
    return out


def _grown(values, n_used, size):
    """A larger array holding ``values[:n_used]``: at least ``size`` entries, and at least
    double the old capacity (amortised growth)."""
    out = np.empty(max(size, 2 * values.shape[0]), dtype=values.dtype)
    out[:n_used] = values[:n_used]
    return out


def _probe_lists(lab_src, lab_rows, lab_inv, cosine):
    """Lists of labeled points around about ``sqrt(L)`` probes (labeled points drawn with a
    fixed seed): ``(probes, list_offsets, members)``, positions into ``lab_rows``; list ``p``
    is ``members[list_offsets[p]:list_offsets[p + 1]]`` (its probe included). Up to
    ``_LAZY_SCAN_LABELED`` points, every point is a probe and the lists are empty."""
    n_labeled = lab_rows.shape[0]
    if n_labeled <= _LAZY_SCAN_LABELED:
        probes = np.arange(n_labeled, dtype=np.int64)
        return probes, np.zeros(n_labeled + 1, dtype=np.int64), probes[:0]
    n_probes = int(round(np.sqrt(n_labeled)))
    probes = np.sort(np.random.default_rng(_GROUP_SEED).choice(n_labeled, n_probes,
                                                                replace=False))
    label = np.empty(n_labeled, dtype=np.int64)
    _lazy.assign_lists(lab_src, lab_rows, lab_inv, cosine, probes, label)
    members = np.argsort(label, kind="stable").astype(np.int64)
    list_offsets = np.zeros(n_probes + 1, dtype=np.int64)
    np.cumsum(np.bincount(label, minlength=n_probes), out=list_offsets[1:])
    return probes, list_offsets, members


def _labeled_upper(pool, inv_norm, cosine, shift, lab_src, lab_rows, lab_inv, inflate, chunk,
                   upper):
    """An upper bound of every row's distance to the labeled set into ``upper`` (float32,
    rounded up): the exact distance to the nearest of a few candidates, the ``sqrt(L)``
    probes and the list of the nearest probe (``_probe_lists``), chosen in float32
    (O(sqrt(L) d) per row instead of O(L d); any candidate gives a valid bound, the float32
    rounding only affects which one). Three ways, by cost:

    - the lists' points fit in a chunk's memory (or 3 bytes per row): one kernel,
      ``_probe_upper`` (measured 3-6x faster than FAISS's many small searches below);
    - the same without the lists when they are so uneven that the expected candidates per
      row (a list's share of the rows taken as its share of the labeled points) exceed
      ``L / _UNEVEN_LISTS`` (text embeddings: one list of 627 of 1,000 points, 510
      candidates per row): the nearest probe alone, a looser bound;
    - more labeled points than that memory: FAISS's searches against the probes, then
      against each list. The searches are small (a few thousand rows against ~sqrt(L)
      points), so FAISS runs single-threaded in two Python threads, each over its own
      blocks of rows: a multi-threaded FAISS call pays an OpenMP fork-join, and with
      FAISS's threads spinning (faiss imported before fastal) or a busy machine that cost
      28 ms per call (45 s instead of 0.7 s for 200k x 32, L = 1,000). Rows are sorted by
      probe inside each block; the lists are copied as float32 in groups of at most
      ``max(512 KiB, 3 bytes per row)``.
    """
    import concurrent.futures

    n_pool, d = pool.shape
    n_labeled = lab_rows.shape[0]
    probes, list_offsets, members = _probe_lists(lab_src, lab_rows, lab_inv, cosine)
    n_probes = probes.shape[0]
    # Candidates per row: the probes and the list of the nearest probe, whose share of the
    # rows is about its share of the labeled points (a sample of the same data).
    sizes = np.diff(list_offsets).astype(np.float64)
    per_row = n_probes + float(sizes @ sizes) / n_labeled
    fits = n_labeled * d * 4 <= max(CHUNK_BYTES, _LABELED_INDEX_ROW_BYTES * n_pool)
    if fits:
        if n_labeled <= _UNEVEN_LISTS * per_row:
            # uneven lists (labeled points crowded in a few places, e.g. text embeddings:
            # one list of 627 of 1,000 points): the probes alone, looser bounds whose
            # larger band costs less than the lists (a third of the time on those)
            list_offsets = np.zeros(n_probes + 1, dtype=np.int64)
            members = members[:0]
        # one kernel picks each row's candidate in float32 (3-6x faster than FAISS's many
        # small searches below)
        _probe_upper(pool, inv_norm, cosine, shift, lab_src, lab_rows, lab_inv, probes,
                     members, list_offsets, inflate, upper)
        return
    probe_points = np.empty((n_probes, d), dtype=np.float32)
    _shifted_points(lab_src, lab_rows[probes], lab_inv, cosine, shift, probe_points)
    # consecutive lists whose points fit the budget (a larger list alone)
    most = max(1, max(_LABELED_INDEX_BYTES, _LABELED_INDEX_ROW_BYTES * n_pool) // (4 * d))
    groups = []
    p0 = 0
    while p0 < n_probes and members.shape[0]:
        p1 = p0 + 1
        while p1 < n_probes and list_offsets[p1 + 1] - list_offsets[p0] <= most:
            p1 += 1
        groups.append((p0, p1))
        p0 = p1
    shared = None
    if len(groups) == 1:  # every list in one copy, shared by the threads
        shared = np.empty((members.shape[0], d), dtype=np.float32)
        _shifted_points(lab_src, lab_rows[members], lab_inv, cosine, shift, shared)
    search_rows = _search_rows(chunk, d, n_pool)
    search_rows = max(1, search_rows // _BOUND_THREADS)  # one buffer per thread
    block_rows = search_rows * max(1, min(_BOUND_BLOCK_ROWS, n_pool // 16) // search_rows)

    def run(first_block, step):
        buf = np.empty((min(search_rows, n_pool), d), dtype=np.float32)
        found = np.empty((search_rows, 1), dtype=np.int64)
        found_sq = np.empty((search_rows, 1), dtype=np.float32)
        for begin in range(first_block * block_rows, n_pool, step * block_rows):
            stop = min(begin + block_rows, n_pool)
            label = np.empty((stop - begin, 1), dtype=np.int64)
            best_sq = np.empty((stop - begin, 1), dtype=np.float32)
            for a in range(begin, stop, search_rows):
                b = min(a + search_rows, stop)
                block = _search_block(pool, a, b, inv_norm, cosine, shift, buf)
                knn_l2(block, probe_points, 1, best_sq[a - begin:b - begin],
                       label[a - begin:b - begin])
            label = label[:, 0]
            best_sq = best_sq[:, 0]
            mine = probes[label]
            order = np.argsort(label, kind="stable")
            runs = np.searchsorted(label[order], np.arange(n_probes + 1))
            for p0, p1 in groups:
                if shared is not None:
                    points = shared
                else:
                    points = np.empty((list_offsets[p1] - list_offsets[p0], d),
                                      dtype=np.float32)
                    _shifted_points(lab_src,
                                    lab_rows[members[list_offsets[p0]:list_offsets[p1]]],
                                    lab_inv, cosine, shift, points)
                for p in range(p0, p1):
                    in_list = points[list_offsets[p] - list_offsets[p0]:
                                     list_offsets[p + 1] - list_offsets[p0]]
                    rows = order[runs[p]:runs[p + 1]]
                    for a in range(0, rows.shape[0], search_rows):
                        part = rows[a:a + search_rows]
                        n = part.shape[0]
                        _shifted_points(pool, part + begin, inv_norm, cosine, shift, buf[:n])
                        knn_l2(buf[:n], in_list, 1, found_sq[:n], found[:n])
                        closer = found_sq[:n, 0] < best_sq[part]
                        best_sq[part[closer]] = found_sq[:n, 0][closer]
                        mine[part[closer]] = members[list_offsets[p] + found[:n, 0][closer]]
                del points
            _lazy.exact_upper(pool, begin, inv_norm, cosine, lab_src, lab_rows, lab_inv, mine,
                              inflate, upper[begin:stop])

    with single_threaded_faiss():
        n_blocks = -(-n_pool // block_rows)
        n_workers = max(1, min(_BOUND_THREADS, n_blocks))
        if n_workers == 1:
            run(0, 1)
        else:
            with concurrent.futures.ThreadPoolExecutor(n_workers) as pool_of_threads:
                for job in [pool_of_threads.submit(run, w, n_workers) for w in range(n_workers)]:
                    job.result()


def _probe_upper(pool, inv_norm, cosine, shift, lab_src, lab_rows, lab_inv, probes, members,
                 list_offsets, inflate, upper):
    """``_labeled_upper`` by one kernel (``_lazy.probe_upper``) on shifted float32 copies of
    the probes' and the lists' points."""
    def points(positions):
        out = np.empty((positions.shape[0], pool.shape[1]), dtype=np.float32)
        _shifted_points(lab_src, lab_rows[positions], lab_inv, cosine, shift, out)
        return out

    _lazy.probe_upper(pool, inv_norm, cosine, shift, lab_src, lab_rows, lab_inv, probes,
                      points(probes), members, list_offsets, points(members), inflate, upper)


def _complete_labeled(pool, rows, inv_norm, cosine, shift, lab_src, lab_rows, lab_inv, chunk,
                      key):
    """Lower ``key`` (float64, per entry of ``rows``) to each row's exact distance to the
    labeled set: FAISS candidates and the error certificate of ``_search_labeled``, on the
    gathered rows. Returns the number of rows rescanned exactly (fallbacks)."""
    n_rows = rows.shape[0]
    n_pool, d = pool.shape
    n_labeled = lab_rows.shape[0]
    if n_labeled <= _LAZY_SCAN_LABELED:
        _lazy.rows_labeled_exact(pool, rows, inv_norm, cosine, lab_src, lab_rows, lab_inv, key)
        return 0
    err_coef = 2.0 * (d + 8) * _U32
    lab_chunk = _labeled_chunk_rows(n_labeled, n_pool, d, _BAND_LABELED_BYTES)
    search_rows = _search_rows(chunk, d, n_pool)
    block_rows = min(n_rows, search_rows * max(1, _KERNEL_ROWS // search_rows))
    buf = np.empty((min(search_rows, n_rows), d), dtype=np.float32)
    cand_buf = np.empty(block_rows * _N_CANDIDATES, dtype=np.int64)
    cand_sq_buf = np.empty(block_rows * _N_CANDIDATES, dtype=np.float32)
    fallback = np.zeros(block_rows, dtype=np.int32)
    n_fallback = 0

    def gathered(begin, stop):  # band rows begin:stop, shifted, in float32
        block = buf[:stop - begin]
        _shifted_points(pool, rows[begin:stop], inv_norm, cosine, shift, block)
        return block

    with small_search_blocks(_BAND_SEARCH_BLOCK, _BAND_SEARCH_BLOCK):
        for first, last, points, norm_max in _point_chunks(lab_src, lab_rows, lab_inv, cosine,
                                                           shift, lab_chunk):
            for outer in range(0, n_rows, block_rows):
                outer_stop = min(outer + block_rows, n_rows)
                size = outer_stop - outer
                cand, cand_sq = _candidates(points, cand_buf, cand_sq_buf, outer, outer_stop,
                                            search_rows, gathered)
                fallback[:size] = 0
                _lazy.rows_labeled_mindist(pool, rows[outer:outer_stop], inv_norm, cosine,
                                           lab_src, lab_rows[first:last], lab_inv, cand,
                                           cand_sq, shift, norm_max, err_coef,
                                           key[outer:outer_stop], fallback[:size])
                n_fallback += int(fallback[:size].sum())
            del points  # before the next chunk's array exists
    return n_fallback


def _candidates(points, cand_buf, cand_sq_buf, outer, outer_stop, search_rows, block_of):
    """FAISS's ``_N_CANDIDATES`` nearest ``points`` (fewer if there are fewer; squared
    float32 distances) of the rows ``outer:outer_stop``, searched ``search_rows`` at a time
    (``block_of(begin, stop)``: those rows, shifted, in float32): ``(cand, cand_sq)``, views
    of the two buffers."""
    n_cand = min(_N_CANDIDATES, points.shape[0])
    size = outer_stop - outer
    cand = cand_buf[:size * n_cand].reshape(size, n_cand)
    cand_sq = cand_sq_buf[:size * n_cand].reshape(size, n_cand)
    for begin in range(outer, outer_stop, search_rows):
        stop = min(begin + search_rows, outer_stop)
        knn_l2(block_of(begin, stop), points, n_cand, cand_sq[begin - outer:stop - outer],
               cand[begin - outer:stop - outer])
    return cand, cand_sq


def _point_chunks(src, rows, inv, cosine, shift, chunk_rows):
    """``(first, last, points, norm_max)`` for each run of ``chunk_rows`` of ``rows``:
    ``src[rows[first:last]]`` shifted in float32 (``_shifted_points``) and its largest
    norm. The caller drops ``points`` before asking for the next chunk."""
    n, d = rows.shape[0], src.shape[1]
    for first in range(0, n, chunk_rows):
        last = min(first + chunk_rows, n)
        points = np.empty((last - first, d), dtype=np.float32)
        norm_max = _shifted_points(src, rows[first:last], inv, cosine, shift, points)
        yield first, last, points, norm_max
        del points


class _Scratch:
    """Temporary arrays carved out of an array's memory while its contents do not matter
    (64-byte aligned); a new array when it is full."""

    def __init__(self, host):
        self._bytes = host.reshape(-1).view(np.uint8)
        self._used = 0

    def take(self, shape, dtype):
        dtype = np.dtype(dtype)
        n_bytes = int(np.prod(shape)) * dtype.itemsize
        start = -(-self._used // 64) * 64
        if start + n_bytes > self._bytes.shape[0]:
            return np.empty(shape, dtype=dtype)
        self._used = start + n_bytes
        return self._bytes[start:start + n_bytes].view(dtype).reshape(shape)


class _Clock:
    """Wall-clock time per phase, for ``stats`` (benchmarks)."""

    def __init__(self):
        self.laps = {}
        self._last = time.perf_counter()

    def lap(self, name):
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self._last
        self._last = now
