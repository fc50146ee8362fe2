"""fastal.diversity.kcenter against the plain NumPy greedy loop in reference_diversity.py."""

import importlib
import os
import subprocess
import sys
from fractions import Fraction

import numba

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastal._errors import ArgumentError, FastalError
from fastal._kernels import kcenter as _kc_kernels
from fastal._kernels import kcenter_scan as _scan
from fastal._validation import l2_value_limit
from fastal.diversity import kcenter
from fastal.diversity.kcenter import _kcenter
from tests.reference_diversity import kcenter_greedy
from tests.reference import lane_sum


def assert_matches_reference(X, k, *, labeled=None, metric="l2", seed=0, weights=None,
                             n_groups=None, chunk_rows=None):
    """Every algorithm (the small jobs' full scans, the lazy band and the
    triangle-inequality groups) against the reference; returns
    the default path's selection."""
    idx, scores, cover = kcenter_greedy(X, k, labeled=labeled, metric=metric, seed=seed,
                                        weights=weights)
    paths = ["small", "lazy", "grouped"]
    for path in paths:
        stats = {}
        sel = _kcenter(X, k, labeled=labeled, metric=metric, seed=seed, weights=weights,
                       n_groups=n_groups, chunk_rows=chunk_rows, path=path, stats=stats)
        assert stats["path"] == path
        assert sel.indices.dtype == np.int64 and sel.scores.dtype == np.float32
        np.testing.assert_array_equal(sel.indices, idx)
        np.testing.assert_allclose(sel.scores, scores.astype(np.float32), rtol=1e-6,
                                   atol=1e-12)
        np.testing.assert_allclose(sel.extra["covering_radius"], cover, rtol=1e-9, atol=1e-12)
        assert len(set(sel.indices.tolist())) == k
        assert sel.method == "kcenter" and sel.n_pool == np.asarray(X).shape[0]
    return _kcenter(X, k, labeled=labeled, metric=metric, seed=seed, weights=weights,
                    n_groups=n_groups, chunk_rows=chunk_rows)


def blobs(rng, n, d, n_centers, spread=0.05, offset=0.0):
    centers = rng.normal(size=(n_centers, d)) + offset
    return centers[rng.integers(n_centers, size=n)] + spread * rng.normal(size=(n, d))


# --------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_groups", [1, 5, 40, None])
@pytest.mark.parametrize("labeled_kind", ["none", "positions", "embeddings"])
def test_random_matches_reference(dtype, n_groups, labeled_kind):
    rng = np.random.default_rng(hash((str(dtype), n_groups, labeled_kind)) % 2**32)
    X = rng.normal(size=(700, 6)).astype(dtype)
    labeled = {"none": None,
               "positions": rng.choice(700, 30, replace=False),
               "embeddings": rng.normal(size=(25, 6)).astype(dtype)}[labeled_kind]
    assert_matches_reference(X, 60, labeled=labeled, n_groups=n_groups, seed=3)


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("n_labeled", [0, 1, 7, 300])
def test_clustered_matches_reference(metric, n_labeled):
    rng = np.random.default_rng(n_labeled)
    X = blobs(rng, 3000, 12, 20, offset=5.0).astype(np.float32)
    labeled = rng.choice(3000, n_labeled, replace=False) if n_labeled else None
    assert_matches_reference(X, 150, labeled=labeled, metric=metric, n_groups=50)


def test_clustered_pruning_skips_work():
    rng = np.random.default_rng(1)
    X = blobs(rng, 20000, 8, 50, spread=0.02).astype(np.float32)
    stats = {}
    _kcenter(X, 200, labeled=np.arange(100), stats=stats)
    # 200 picks x 20000 rows without pruning
    assert stats["row_evaluations"] < 0.25 * 200 * 20000


def test_offset_data_certificate_and_fallback():
    # Large common offset: FAISS's |x|^2 + |y|^2 - 2xy loses digits; the shifted search and
    # the exact recomputation must still give the reference's picks. Many labeled points so
    # that only 8 FAISS candidates are recomputed per row.
    rng = np.random.default_rng(2)
    X = (rng.normal(size=(2000, 5)) * 1e-2 + 1e3).astype(np.float64)
    labeled = (rng.normal(size=(200, 5)) * 1e-2 + 1e3)
    stats = {}
    sel = _kcenter(X, 50, labeled=labeled, stats=stats, n_groups=30)
    idx, _, _ = kcenter_greedy(X, 50, labeled=labeled)
    np.testing.assert_array_equal(sel.indices, idx)


def test_fallback_rows_are_rescanned_exactly():
    # Nearly equidistant labeled points (a tiny ring around each pool row) defeat the
    # certificate; those rows must be scanned exactly against all labeled points.
    rng = np.random.default_rng(4)
    base = rng.normal(size=(300, 3)) * 100
    labeled = np.repeat(base[:30], 20, axis=0) + rng.normal(size=(600, 3)) * 1e-6
    stats = {}
    sel = _kcenter(base, 40, labeled=labeled, stats=stats, n_groups=10)
    idx, _, _ = kcenter_greedy(base, 40, labeled=labeled)
    assert stats["fallback_rows"] > 0
    np.testing.assert_array_equal(sel.indices, idx)


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("labeled_kind", ["none", "positions", "embeddings"])
def test_duplicate_heavy_pool(metric, labeled_kind):
    rng = np.random.default_rng(5)
    distinct = rng.normal(size=(6, 4)).astype(np.float32)
    X = distinct[rng.integers(6, size=400)]
    labeled = {"none": None, "positions": np.array([0, 1, 2, 5, 9]),
               "embeddings": distinct[:3].copy()}[labeled_kind]
    n_unlabeled = 400 - (5 if labeled_kind == "positions" else 0)
    # k beyond the number of distinct rows: the zero-distance phase picks lowest indices
    k = min(60, n_unlabeled)
    sel = assert_matches_reference(X, k, labeled=labeled, metric=metric, n_groups=7)
    assert sel.scores[-1] == 0.0


def test_all_rows_picked_when_k_equals_unlabeled():
    rng = np.random.default_rng(6)
    X = rng.integers(0, 3, size=(50, 2)).astype(np.float32)
    labeled = np.array([3, 4, 49])
    sel = assert_matches_reference(X, 47, labeled=labeled, n_groups=4)
    assert sorted(sel.indices.tolist()) == sorted(set(range(50)) - {3, 4, 49})


def test_one_dimensional_ties_go_to_lower_row():
    # 1-D integer grid: many exact distance ties.
    X = np.arange(40, dtype=np.float32)[:, None] % 10
    assert_matches_reference(X, 25, labeled=np.array([0]), n_groups=3)
    assert_matches_reference(X, 25, n_groups=5, seed=11)


def test_integer_and_bool_dtypes_are_converted():
    rng = np.random.default_rng(7)
    Xi = rng.integers(-50, 50, size=(300, 3))
    assert_matches_reference(Xi, 30, labeled=np.arange(5), n_groups=6)
    Xb = rng.random((300, 10)) > 0.5
    assert_matches_reference(Xb, 30, labeled=np.arange(5), n_groups=6)


def test_bool_mask_labeled_equals_positions():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(200, 4))
    mask = np.zeros(200, dtype=bool)
    mask[[3, 50, 120]] = True
    a = kcenter(X, 20, labeled=mask)
    b = kcenter(X, 20, labeled=[120, 3, 50, 3])
    np.testing.assert_array_equal(a.indices, b.indices)


@pytest.mark.parametrize("labeled_kind", ["none", "positions"])
def test_weighted_matches_reference(labeled_kind):
    rng = np.random.default_rng(9)
    X = blobs(rng, 1500, 5, 10).astype(np.float32)
    w = rng.random(1500)
    w[::7] = 0.0  # zero weights: score 0, picked only in the all-zero phase
    labeled = rng.choice(1500, 20, replace=False) if labeled_kind == "positions" else None
    assert_matches_reference(X, 100, labeled=labeled, weights=w, n_groups=25)
    assert_matches_reference(X, 100, labeled=labeled, weights=w.astype(np.float32),
                             metric="cosine", n_groups=25)


@pytest.mark.parametrize("labeled_kind", ["none", "positions", "mask", "embeddings"])
@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_small_jobs_take_full_scans_by_default(labeled_kind, metric, monkeypatch):
    module = importlib.import_module("fastal.diversity.kcenter")
    rng = np.random.default_rng(21)
    X = blobs(rng, 600, 5, 8).astype(np.float32)
    mask = np.zeros(600, dtype=bool)
    mask[rng.choice(600, 12, replace=False)] = True
    labeled = {"none": None, "positions": np.flatnonzero(mask), "mask": mask,
               "embeddings": rng.normal(size=(9, 5)).astype(np.float32)}[labeled_kind]
    n_labeled = {"none": 0, "positions": 12, "mask": 12, "embeddings": 9}[labeled_kind]
    w = rng.random(600)
    k = 40
    work = 600 * (k + n_labeled) * 5
    for weights in (None, w):
        idx, scores, cover = kcenter_greedy(X, k, labeled=labeled, metric=metric, seed=4,
                                            weights=weights)
        for limit, small in ((work, True), (work - 1, False)):
            monkeypatch.setattr(module, "_SMALL_JOB_WORK", limit)
            stats = {}
            sel = _kcenter(X, k, labeled=labeled, metric=metric, seed=4, weights=weights,
                           stats=stats)
            assert (stats["path"] == "small") == small
            np.testing.assert_array_equal(sel.indices, idx)
            np.testing.assert_allclose(sel.scores, scores.astype(np.float32), rtol=1e-6)
            np.testing.assert_allclose(sel.extra["covering_radius"], cover, rtol=1e-9,
                                       atol=1e-12)


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_jobs_without_labels_up_to_the_limit_go_straight_to_the_scans(metric, dtype,
                                                                       monkeypatch):
    # N k d <= _SCAN_FIRST_WORK without labels: the float32 scans, no lazy attempt; one
    # visit more: the lazy path first (which on this small pool gives up to the scans).
    # Weighted calls alike; labeled and explicit-path calls never.
    module = importlib.import_module("fastal.diversity.kcenter")
    rng = np.random.default_rng(23)
    X = rng.normal(size=(2000, 48)).astype(dtype)
    k = 30
    idx = kcenter_greedy(X, k, metric=metric, seed=6)[0]
    for limit, straight in ((2000 * k * 48, True), (2000 * k * 48 - 1, False)):
        monkeypatch.setattr(module, "_SCAN_FIRST_WORK", limit)
        stats = {}
        sel = _kcenter(X, k, metric=metric, seed=6, stats=stats)
        tried_lazy = stats["path"] == "lazy" or "lazy (abandoned)" in stats["seconds"]
        assert tried_lazy != straight
        assert stats["path"] == "scan" or not straight
        np.testing.assert_array_equal(sel.indices, idx)
    monkeypatch.setattr(module, "_SCAN_FIRST_WORK", 1 << 40)
    # near-duplicates (more overlapping intervals than _SCAN32_MAX_CANDIDATES): one
    # attempt, then the lazy path in full and the groups, the same picks
    monkeypatch.setattr(module, "_SCAN32_MAX_CANDIDATES", 8)
    D = X[rng.integers(40, size=2000)]
    attempts = []
    scan32 = module._scan32_kcenter
    monkeypatch.setattr(module, "_scan32_kcenter",
                        lambda *a: attempts.append(1) or scan32(*a))
    stats = {}
    sel = _kcenter(D, k, metric=metric, seed=6, stats=stats)
    assert stats["scan32_abandoned_at"] >= 1 and stats["path"] in ("lazy", "grouped")
    assert len(attempts) == 1
    np.testing.assert_array_equal(sel.indices, kcenter_greedy(D, k, metric=metric, seed=6)[0])
    for kwargs in ({"labeled": [0, 1]}, {"path": "lazy"}):
        stats = {}
        _kcenter(X, k, metric=metric, seed=6, stats=stats, **kwargs)
        assert stats["path"] != "scan"
    # weighted calls too (unit weights: the unweighted picks, scores and radii)
    stats = {}
    sel = _kcenter(X, k, metric=metric, seed=6, stats=stats, weights=np.ones(2000))
    assert stats["path"] == "scan"
    plain = _kcenter(X, k, metric=metric, seed=6)
    for name in ("indices", "scores"):
        np.testing.assert_array_equal(getattr(sel, name), getattr(plain, name))
    np.testing.assert_array_equal(sel.extra["covering_radius"], plain.extra["covering_radius"])


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_cold_processes_run_jobs_up_to_the_limit_as_full_scans(metric, monkeypatch):
    # a job past _SMALL_JOB_WORK whose path's kernels are not compiled (nor cached) runs as
    # full scans up to _COLD_JOB_WORK visits, until such runs have taken
    # _COLD_SCAN_SECONDS in this process; the same bits either way
    module = importlib.import_module("fastal.diversity.kcenter")
    rng = np.random.default_rng(24)
    X = rng.normal(size=(2000, 16)).astype(np.float32)
    w = rng.random(2000)
    k = 30
    asked = []
    ready = {}
    monkeypatch.setattr(module, "compiled", lambda kernel, dtype, none: asked.append(
        (kernel, dtype, none)) or ready[kernel])
    # (the kernel asked about, and whether its weights argument must be None)
    for labeled, weights, n_labeled, kernel, unweighted in (
            ([3, 5], None, 2, module._lazy._lazy_picks, {"w": True}),
            ([3, 5], w, 2, module._lazy._lazy_picks, {"w": False}),
            (None, w, 0, module._scan._scan32_tasks, {"weights": False}),
            (None, None, 0, module._scan._scan32_tasks, {"weights": True})):
        work = 2000 * (k + n_labeled) * 16
        monkeypatch.setattr(module, "_SCAN_FIRST_WORK", work if labeled is None else 0)
        expected = _kcenter(X, k, labeled=labeled, weights=weights, metric=metric, seed=2,
                            path="small")
        for limit, spent, is_ready, cold in ((work, 0.0, False, True),
                                             (work - 1, 0.0, False, False),
                                             (work, 0.0, True, False),
                                             (work, module._COLD_SCAN_SECONDS, False, False)):
            monkeypatch.setattr(module, "_COLD_JOB_WORK", limit)
            monkeypatch.setattr(module, "_cold_scans", [spent])
            ready[kernel] = is_ready
            asked.clear()
            stats = {}
            sel = _kcenter(X, k, labeled=labeled, weights=weights, metric=metric, seed=2,
                           stats=stats)
            assert (stats["path"] == "small") == cold and stats.get("cold", False) == cold
            assert asked == ([(kernel, np.float32, unweighted)] if limit == work and not spent
                             else [])
            assert (module._cold_scans[0] > spent) == cold
            for name in ("indices", "scores"):
                np.testing.assert_array_equal(getattr(sel, name), getattr(expected, name))
            np.testing.assert_array_equal(sel.extra["covering_radius"],
                                          expected.extra["covering_radius"])
        # explicit paths and groups, and fastal warmup's calls, never
        for kwargs in ({"path": "grouped"}, {"n_groups": 3}, {"small_jobs": False}):
            stats = {}
            _kcenter(X, k, labeled=labeled, weights=weights, metric=metric, stats=stats,
                     **kwargs)
            assert stats["path"] != "small"


def test_cold_rule_compiles_nothing_in_a_fresh_process(tmp_path):
    # the real check, in a fresh process with an empty Numba cache: the first call of a
    # job the lazy path would take runs as full scans and compiles none of the lazy
    # kernels; once they are compiled (here by an explicit path), the same job takes them
    script = """
import numpy as np
from fastal._kernels import kcenter_lazy
import importlib
module = importlib.import_module("fastal.diversity.kcenter")
x = np.random.default_rng(0).standard_normal((40000, 16)).astype(np.float32)
lab = np.arange(500)
stats = {}
a = module._kcenter(x, 100, labeled=lab, stats=stats)
assert stats["path"] == "small" and stats["cold"], stats
assert not kcenter_lazy._lazy_picks.overloads
module._kcenter(x[:3000], 5, labeled=lab, path="lazy")
stats = {}
b = module._kcenter(x, 100, labeled=lab, stats=stats)
assert stats["path"] == "lazy", stats
assert (a.indices == b.indices).all() and (a.scores == b.scores).all()
print("ok")
"""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_jobs_same_bits_as_the_other_paths(dtype, metric):
    # the small path's distances are the other paths' float64 sums: same scores and radii
    # (which path runs depends on the job's size and on what this process has compiled:
    # the answer must not)
    rng = np.random.default_rng(22)
    X = rng.normal(size=(3000, 24)).astype(dtype)
    labeled = rng.choice(3000, 80, replace=False)
    w = rng.random(3000).astype(np.float32)
    for labels, weights, others in ((labeled, None, ("lazy", "grouped")),
                                    (labeled, w, ("lazy", "grouped")),
                                    (None, None, ("lazy", "grouped", "scan")),
                                    (None, w, ("lazy", "grouped"))):
        small = _kcenter(X, 200, labeled=labels, weights=weights, metric=metric,
                         path="small")
        for path in others:
            other = _kcenter(X, 200, labeled=labels, weights=weights, metric=metric,
                             path=path)
            np.testing.assert_array_equal(small.indices, other.indices)
            np.testing.assert_array_equal(small.scores, other.scores)
            np.testing.assert_array_equal(small.extra["covering_radius"],
                                          other.extra["covering_radius"])


def _picks_one_by_one(X, inv_norm, cosine, row, score, mindist, k, weights):
    """The greedy as k one-centre passes of ``lower_to`` (the picks' kernel before it ran
    the whole greedy in one call): the reference for ``kcenter_scan.picks``."""
    indices, scores, cover = np.empty(k, np.int64), np.empty(k), np.empty(k)
    for t in range(k):
        indices[t], scores[t] = row, score
        mindist[row] = -1.0
        score, row, cover[t] = _scan.lower_to(X, inv_norm, cosine, X, inv_norm, [row],
                                              mindist, weights)
    return indices, scores, cover


@pytest.mark.parametrize("calls", ["one", "several"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", ["random", "duplicates", "weighted", "cosine", "labeled",
                                  "every row"])
def test_picks_in_one_call_same_bits_as_one_pass_per_pick(case, threads, calls, monkeypatch):
    # The threads' rows meet at a barrier per pick; the winner is the lowest row of equal
    # scores across the threads too (duplicates: ties everywhere), with 1 or 2 threads of
    # at least 7 rows, in one kernel call or in calls of 7 picks.
    monkeypatch.setattr(_scan, "MIN_ROWS_PER_THREAD", 7)
    rng = np.random.default_rng(len(case))
    n = 301
    if calls == "several":
        monkeypatch.setattr(_scan, "PICKS_WORK", 7 * n * 6)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    if case == "duplicates":
        X = X[rng.integers(5, size=n)]
    cosine = case == "cosine"
    inv_norm = (1.0 / np.linalg.norm(X.astype(np.float64), axis=1) if cosine
                else np.empty(0))
    weights = None
    if case == "weighted":
        weights = rng.random(n)
        weights[::5] = 0.0
    mindist = np.full(n, np.inf)
    row, score = 17, np.inf
    if case == "labeled":
        score, row, _ = _scan.lower_to(X, inv_norm, False, X, inv_norm, [3, 99, 250], mindist)
        mindist[[3, 99, 250]] = -1.0
    k = n - 3 if case in ("labeled", "every row") else 60
    want = _picks_one_by_one(X, inv_norm, cosine, row, score, mindist.copy(), k, weights)
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        got = _scan.picks(X, inv_norm, cosine, row, score, mindist, k, weights)
    finally:
        numba.set_num_threads(previous)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    assert (mindist[got[0]] == -1.0).all()


def test_first_pick_is_documented_random_draw():
    X = np.random.default_rng(10).normal(size=(100, 3))
    for seed in (0, 1, 123):
        sel = kcenter(X, 3, seed=seed)
        assert sel.indices[0] == np.random.default_rng(seed).integers(100)
        assert np.isinf(sel.scores[0])


@pytest.mark.parametrize("path", ["lazy", "grouped"])
@pytest.mark.parametrize("n_labeled", [40, 300])  # lazy: every labeled point, or lists
def test_chunk_rows_do_not_change_result(path, n_labeled):
    rng = np.random.default_rng(11)
    X = rng.normal(size=(1000, 8)).astype(np.float32)
    L = rng.normal(size=(n_labeled, 8))
    a = _kcenter(X, 50, labeled=L, chunk_rows=1, n_groups=17, path=path)
    others = [_kcenter(X, 50, labeled=L, chunk_rows=c, n_groups=17, path=path)
              for c in (7, 333, 4096, 1000)]
    others.append(_kcenter(X, 50, labeled=L))
    for other in others:
        np.testing.assert_array_equal(a.indices, other.indices)
        np.testing.assert_array_equal(a.scores, other.scores)
        np.testing.assert_array_equal(a.extra["covering_radius"],
                                      other.extra["covering_radius"])


@pytest.mark.parametrize("path", ["lazy", "grouped"])
@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_thread_count_does_not_change_result(metric, path):
    rng = np.random.default_rng(12)
    X = blobs(rng, 5000, 16, 30).astype(np.float32)
    labeled = rng.choice(5000, 100, replace=False)
    previous = numba.get_num_threads()
    results = []
    try:
        for n_threads in (1, 2):
            numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
            results.append(_kcenter(X, 200, labeled=labeled, metric=metric, n_groups=70,
                                    path=path))
    finally:
        numba.set_num_threads(previous)
    np.testing.assert_array_equal(results[0].indices, results[1].indices)
    np.testing.assert_array_equal(results[0].scores, results[1].scores)
    np.testing.assert_array_equal(results[0].extra["covering_radius"],
                                  results[1].extra["covering_radius"])


def test_cosine_scale_invariance_and_duplicates_of_labeled_embeddings():
    rng = np.random.default_rng(13)
    X = rng.normal(size=(300, 5))
    labeled = X[:4] * 2.0  # same directions as pool rows 0..3 -> cosine distance exactly 0
    sel = assert_matches_reference(X, 300, labeled=labeled, metric="cosine", n_groups=9)
    assert set(sel.indices[-4:].tolist()) == {0, 1, 2, 3}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 120), d=st.integers(1, 5), k_frac=st.floats(0.0, 1.0),
       n_labeled=st.integers(0, 30), labeled_as=st.sampled_from(["positions", "embeddings"]),
       metric=st.sampled_from(["l2", "cosine"]), grid=st.booleans(),
       n_groups=st.integers(1, 12), weighted=st.booleans(), seed=st.integers(0, 2**31),
       grouping=st.sampled_from([None, "cells", "labeled"]),
       centres=st.sampled_from(["budget", "levels", "rows"]),
       labeled_chunk=st.sampled_from([None, 3, 5]),
       path=st.sampled_from(["lazy", "grouped"]), band_min=st.sampled_from([1, 3, 1024]),
       scan_labeled=st.sampled_from([0, 64]))
def test_property_matches_reference(n, d, k_frac, n_labeled, labeled_as, metric, grid,
                                    n_groups, weighted, seed, grouping, centres,
                                    labeled_chunk, path, band_min, scan_labeled):
    # Also explores the grouping, the split groups' centres (int16 levels or member rows)
    # and the labeled set searched in chunks of a few points; for the lazy path, bands of
    # one or a few rows (many widenings), labeled lists (FAISS completion) or a full scan
    # of the labeled set (in chunks of a few points, when labeled_chunk is set).
    import importlib
    from unittest import mock

    module = importlib.import_module("fastal.diversity.kcenter")
    rng = np.random.default_rng(seed)
    # grid: small integers -> exact ties and duplicates; else generic floats. Only for l2:
    # with cosine, exact ties in real arithmetic (orthogonal rows: distance 1) are broken by
    # the last bit of 1/|x|, which depends on summation order -> not bit-reproducible.
    grid = grid and metric == "l2"
    X = rng.integers(-2, 3, size=(n, d)) if grid else rng.normal(size=(n, d))
    X = X.astype(np.float32)
    if metric == "cosine":
        X[np.abs(X).sum(axis=1) == 0, 0] = 1.0
    if labeled_as == "positions":
        labeled = rng.choice(n, min(n_labeled, n - 1), replace=False) if n > 1 else None
    else:
        labeled = X[rng.integers(n, size=n_labeled)] + (0 if grid else rng.normal(
            size=(n_labeled, d)).astype(np.float32))
        if metric == "cosine" and n_labeled:
            labeled[np.abs(labeled).sum(axis=1) == 0, 0] = 1.0
    n_unlabeled = n - (len(labeled) if labeled_as == "positions" and labeled is not None else 0)
    k = max(1, int(round(k_frac * n_unlabeled)))
    weights = rng.integers(0, 3, size=n).astype(np.float64) if weighted else None
    has_labeled = labeled is not None and len(labeled) > 0
    if grouping == "labeled" and not has_labeled:
        grouping = None
    level_bytes = {"budget": module._LEVEL_ROW_BYTES, "levels": 10**9, "rows": 0}[centres]
    index_bytes = (module._LABELED_INDEX_BYTES if labeled_chunk is None
                   else labeled_chunk * 4 * d)
    if weighted:
        path = "grouped"
    with mock.patch.object(module, "_LEVEL_ROW_BYTES", level_bytes), \
            mock.patch.object(module, "_LABELED_INDEX_BYTES", index_bytes), \
            mock.patch.object(module, "_BAND_LABELED_BYTES", index_bytes), \
            mock.patch.object(module, "_LABELED_INDEX_ROW_BYTES",
                              module._LABELED_INDEX_ROW_BYTES if labeled_chunk is None else 0), \
            mock.patch.object(module, "_LAZY_BAND_MIN", band_min), \
            mock.patch.object(module, "_LAZY_BAND_PER_PICK", 0 if band_min < 1024 else 4), \
            mock.patch.object(module, "_LAZY_SCAN_LABELED", scan_labeled):
        stats = {}
        sel = _kcenter(X, k, labeled=labeled, metric=metric, weights=weights,
                       n_groups=None if grouping == "labeled" else min(n_groups, n),
                       seed=seed, grouping=grouping, path=path, stats=stats)
    assert stats["path"] == path
    idx, scores, cover = kcenter_greedy(X, k, labeled=labeled, metric=metric, seed=seed,
                                        weights=weights)
    np.testing.assert_array_equal(sel.indices, idx)
    np.testing.assert_allclose(sel.scores, scores.astype(np.float32), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(sel.extra["covering_radius"], cover, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- bad input


X_OK = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)


@pytest.mark.parametrize("kwargs, match", [
    (dict(X=np.zeros(5), k=1), "2-D"),
    (dict(X=np.zeros((2, 3, 4)), k=1), "2-D"),
    (dict(X=np.array([["a", "b"]]), k=1), "numeric"),
    (dict(X=np.ones((3, 2), dtype=complex), k=1), "numeric"),
    (dict(X=np.zeros((0, 3)), k=1), "at least one row"),
    (dict(X=X_OK, k=0), "k must be >= 1"),
    (dict(X=X_OK, k=-3), "k must be >= 1"),
    (dict(X=X_OK, k=2.5), "k must be an integer"),
    (dict(X=X_OK, k=True), "k must be an integer"),
    (dict(X=X_OK, k=21), "number of pool rows"),
    (dict(X=X_OK, k=19, labeled=[0, 1]), "unlabeled"),
    (dict(X=X_OK, k=1, labeled=np.arange(20)), "covers all"),
    (dict(X=X_OK, k=1, labeled=[0, 20]), r"\[0, 20\)"),
    (dict(X=X_OK, k=1, labeled=[-1]), r"\[0, 20\)"),
    (dict(X=X_OK, k=1, labeled=np.array([0.5, 1.0])), "integer row positions"),
    (dict(X=X_OK, k=1, labeled=np.zeros(7, dtype=bool)), "boolean mask"),
    (dict(X=X_OK, k=1, labeled=np.zeros((4, 5))), "3 columns"),
    (dict(X=X_OK, k=1, labeled=np.zeros((2, 2, 3))), "labeled must be"),
    (dict(X=X_OK, k=1, labeled=np.full((2, 3), np.nan)), "labeled must be finite"),
    (dict(X=X_OK, k=1, metric="manhattan"), "metric"),
    (dict(X=X_OK, k=1, weights=np.ones(19)), r"weights must have shape \(20,\)"),
    (dict(X=X_OK, k=1, weights=-np.ones(20)), "non-negative"),
    (dict(X=X_OK, k=1, weights=np.full(20, np.nan)), "weights must be finite"),
    (dict(X=X_OK, k=1, weights=np.array(["x"] * 20)), "weights must be real"),
    (dict(X=X_OK, k=1, chunk_rows=0), "chunk_rows"),
])
def test_bad_input_raises(kwargs, match):
    with pytest.raises(FastalError, match=match):
        kcenter(**kwargs)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_embeddings_raise(bad):
    X = X_OK.copy()
    X[7, 2] = bad
    with pytest.raises(FastalError, match="X must be finite; row 7"):
        kcenter(X, 2)


def test_zero_vectors_with_cosine_raise():
    X = X_OK.copy()
    X[4] = 0.0
    with pytest.raises(FastalError, match="X row 4 is a zero vector"):
        kcenter(X, 2, metric="cosine")
    kcenter(X, 2, metric="l2")  # fine for l2
    with pytest.raises(FastalError, match="labeled row 1 is a zero vector"):
        kcenter(X_OK, 2, metric="cosine", labeled=np.array([[1.0, 0, 0], [0, 0, 0]]))


def test_error_is_a_value_error():
    with pytest.raises(ValueError):
        kcenter(X_OK, 0)


# --------------------------------------------------------------------------- grouping paths


@pytest.mark.parametrize("grouping", ["labeled", "labeled-cells", "cells"])
@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("labeled_kind", ["positions", "embeddings"])
def test_groupings_match_reference(grouping, metric, labeled_kind):
    rng = np.random.default_rng(20)
    X = blobs(rng, 4000, 10, 40, spread=0.3).astype(np.float32)
    labeled = (rng.choice(4000, 60, replace=False) if labeled_kind == "positions"
               else blobs(rng, 60, 10, 40, spread=0.3))
    stats = {}
    sel = _kcenter(X, 120, labeled=labeled, metric=metric, grouping=grouping, stats=stats)
    idx, _, cover = kcenter_greedy(X, 120, labeled=labeled, metric=metric)
    np.testing.assert_array_equal(sel.indices, idx)
    np.testing.assert_allclose(sel.extra["covering_radius"], cover, rtol=1e-9, atol=1e-12)
    assert stats["grouping"] == grouping


@pytest.mark.parametrize("grouping", ["labeled", "cells"])
@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("case", ["blobs", "offset", "ring", "duplicates"])
def test_labeled_index_in_chunks(grouping, metric, case, monkeypatch):
    # The labeled points are searched one FAISS index of a few points at a time (the
    # budget is lowered from 512 KiB to 7 points); each chunk lowers the min-distances
    # exactly, with its own certificate and fallback scan. Labeled points duplicated
    # across chunks test the merge of equal distances.
    import importlib

    module = importlib.import_module("fastal.diversity.kcenter")
    rng = np.random.default_rng(23)
    if case == "blobs":
        X = blobs(rng, 3000, 6, 30, spread=0.3).astype(np.float32)
        labeled = rng.choice(3000, 70, replace=False)
    elif case == "offset":
        X = rng.normal(size=(2000, 5)) * 1e-2 + 1e3
        labeled = rng.normal(size=(70, 5)) * 1e-2 + 1e3
    elif case == "ring":
        X = rng.normal(size=(300, 3)) * 100
        labeled = np.repeat(X[:10], 7, axis=0) + rng.normal(size=(70, 3)) * 1e-6
    else:
        X = np.repeat(blobs(rng, 100, 4, 10).astype(np.float32), 10, axis=0)
        labeled = np.concatenate([X[rng.choice(1000, 35)]] * 2)
    d = X.shape[1]
    monkeypatch.setattr(module, "_LABELED_INDEX_BYTES", 7 * 4 * d)
    monkeypatch.setattr(module, "_BAND_LABELED_BYTES", 7 * 4 * d)  # the lazy path's band
    monkeypatch.setattr(module, "_LABELED_INDEX_ROW_BYTES", 0)
    assert module._labeled_chunk_rows(len(labeled), X.shape[0], d) < len(labeled) // 3
    stats = {}
    sel = _kcenter(X, 60, labeled=labeled, metric=metric, grouping=grouping, n_groups=20,
                   stats=stats)
    idx, _, cover = kcenter_greedy(X, 60, labeled=labeled, metric=metric)
    np.testing.assert_array_equal(sel.indices, idx)
    np.testing.assert_allclose(sel.extra["covering_radius"], cover, rtol=1e-9, atol=1e-12)
    if case == "ring" and metric == "l2":
        assert stats["fallback_rows"] > 0


@pytest.mark.parametrize("centres", ["levels", "rows"])
@pytest.mark.parametrize("grouping", ["labeled", "cells"])
@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("weighted", [False, True])
def test_split_group_centres_levels_or_rows(centres, grouping, metric, weighted, monkeypatch):
    # Split groups are centred on int16 levels while those fit the memory budget, else on
    # their member row nearest the mean; both must give the reference's picks.
    import importlib

    module = importlib.import_module("fastal.diversity.kcenter")
    monkeypatch.setattr(module, "_LEVEL_ROW_BYTES", 10**9 if centres == "levels" else 0)
    rng = np.random.default_rng(24)
    X = blobs(rng, 3000, 7, 25, spread=0.4).astype(np.float32)
    labeled = rng.choice(3000, 40, replace=False)
    weights = rng.uniform(0.5, 2.0, size=3000) if weighted else None
    stats = {}
    sel = _kcenter(X, 150, labeled=labeled, metric=metric, grouping=grouping,
                   weights=weights, stats=stats)
    idx, _, cover = kcenter_greedy(X, 150, labeled=labeled, metric=metric, weights=weights)
    np.testing.assert_array_equal(sel.indices, idx)
    np.testing.assert_allclose(sel.extra["covering_radius"], cover, rtol=1e-9, atol=1e-12)
    assert stats["n_groups"] > 40  # the cells were split
    assert stats["row_evaluations"] < 0.5 * 150 * 3000


@pytest.mark.parametrize("grouping", ["labeled", "labeled-cells", "cells"])
def test_many_groups_use_wide_labels(grouping, monkeypatch):
    # Group labels share the uint16 rowdist buffer up to 65,535 groups; beyond, a separate
    # int64 array holds them. Lower the limit to run that path on a small pool.
    import importlib

    module = importlib.import_module("fastal.diversity.kcenter")
    monkeypatch.setattr(module, "_UINT16_LABELS", 7)
    rng = np.random.default_rng(21)
    X = blobs(rng, 2000, 6, 30, spread=0.3).astype(np.float32)
    labeled = rng.choice(2000, 50, replace=False)
    sel = _kcenter(X, 60, labeled=labeled, grouping=grouping, n_groups=40)
    idx, _, _ = kcenter_greedy(X, 60, labeled=labeled)
    np.testing.assert_array_equal(sel.indices, idx)


@pytest.mark.parametrize("grouping", ["labeled", "labeled-cells"])
@pytest.mark.parametrize("n_labeled", [1, 2, 5])
def test_labeled_groups_tiny_labeled_set(grouping, n_labeled):
    rng = np.random.default_rng(21 + n_labeled)
    X = blobs(rng, 1500, 6, 12).astype(np.float32)
    assert_matches_reference_grouping(X, 80, rng.choice(1500, n_labeled, replace=False),
                                      grouping)


def assert_matches_reference_grouping(X, k, labeled, grouping, **kwargs):
    sel = _kcenter(X, k, labeled=labeled, grouping=grouping, **kwargs)
    idx, scores, _ = kcenter_greedy(X, k, labeled=labeled, **kwargs)
    np.testing.assert_array_equal(sel.indices, idx)
    np.testing.assert_allclose(sel.scores, scores.astype(np.float32), rtol=1e-6, atol=1e-12)
    return sel


@pytest.mark.parametrize("grouping", ["labeled", "labeled-cells"])
@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_labeled_groups_duplicates_and_weights(grouping, metric):
    # duplicate-heavy pool with duplicate labeled rows: many rows at distance 0 from their
    # group centre, many exact ties; weights with zeros.
    rng = np.random.default_rng(22)
    distinct = rng.normal(size=(30, 5)).astype(np.float32)
    X = distinct[rng.integers(30, size=2000)]
    labeled = rng.choice(2000, 50, replace=False)
    w = rng.integers(0, 3, size=2000).astype(np.float64)
    assert_matches_reference_grouping(X, 200, labeled, grouping, metric=metric)
    assert_matches_reference_grouping(X, 200, labeled, grouping, metric=metric, weights=w)


def test_auto_grouping_choice():
    rng = np.random.default_rng(23)
    X = blobs(rng, 10000, 8, 30).astype(np.float32)
    for labeled, expected in ((None, "cells"), (rng.choice(10000, 10, replace=False), "cells"),
                              (rng.choice(10000, 200, replace=False), "labeled")):
        stats = {}
        _kcenter(X, 30, labeled=labeled, stats=stats, path="grouped")
        assert stats["grouping"] == expected
    with pytest.raises(FastalError, match="grouping"):
        _kcenter(X, 3, grouping="labeled")


@pytest.mark.parametrize("grouping", ["labeled", "labeled-cells"])
def test_labeled_groups_thread_count_does_not_change_result(grouping):
    rng = np.random.default_rng(24)
    X = blobs(rng, 6000, 16, 30).astype(np.float32)
    labeled = rng.choice(6000, 80, replace=False)
    previous = numba.get_num_threads()
    results = []
    try:
        for n_threads in (1, 2):
            numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
            results.append(_kcenter(X, 150, labeled=labeled, grouping=grouping))
    finally:
        numba.set_num_threads(previous)
    np.testing.assert_array_equal(results[0].indices, results[1].indices)
    np.testing.assert_array_equal(results[0].scores, results[1].scores)


def test_permute_in_place_matches_gather():
    from fastal._kernels.kcenter import permute_in_place
    rng = np.random.default_rng(25)
    for n in (1, 2, 7, 64, 1001):
        perm = rng.permutation(n).astype(np.int32)
        values = rng.random(n)
        expected = values[perm]
        permute_in_place(values, perm, np.zeros((n + 7) // 8, dtype=np.uint8))
        np.testing.assert_array_equal(values, expected)


def test_faiss_block_sizes_restored():
    # kcenter runs FAISS with small distance tables; the user's settings come back after,
    # also when the call fails.
    import faiss

    from fastal.diversity import _faiss

    cvar = faiss.cvar
    before = cvar.distance_compute_blas_query_bs, cvar.distance_compute_blas_database_bs
    X = np.random.default_rng(0).standard_normal((300, 4)).astype(np.float32)

    kcenter(X, 5, labeled=np.arange(20))
    assert (cvar.distance_compute_blas_query_bs,
            cvar.distance_compute_blas_database_bs) == before
    with pytest.raises(FastalError):
        kcenter(X, 5, labeled=np.arange(20), metric="nope")
    assert (cvar.distance_compute_blas_query_bs,
            cvar.distance_compute_blas_database_bs) == before
    with _faiss.small_search_blocks():
        assert (cvar.distance_compute_blas_query_bs,
                cvar.distance_compute_blas_database_bs) == (_faiss.QUERY_BLOCK,
                                                             _faiss.DATABASE_BLOCK)
    # the table grows with the job (at most 2 bytes per row, from 256 KiB to 1 MiB)
    sizes = (0, 300, 250_000, 500_000, 10**6, 10**8)
    blocks = [_faiss.query_block(n) for n in sizes]
    assert blocks == [256, 256, 256, 512, 1024, 1024]
    assert all(b * _faiss.DATABASE_BLOCK * 4 <= max(2**18, 2 * n)
               for b, n in zip(blocks, sizes) if b < 1024)


@pytest.mark.parametrize("weighted", [False, True])
def test_float32_ties_resolved_in_float64(weighted):
    # Min-distances are stored rounded up to float32: rows 1 and 2 below share that value
    # (1 + 1e-10 and 1 + 2e-10 from the labeled row 0), so the exact float64 distance must
    # decide: row 2 is farther, although row 1 has the lower index.
    X = np.array([[0.0], [1.0 + 1e-10], [1.0 + 2e-10], [-0.5], [0.25]], dtype=np.float64)
    assert np.float32(X[1, 0]) == np.float32(X[2, 0])
    weights = np.array([1.0, 1.0, 1.0, 1.0, 1.0]) if weighted else None
    sel = kcenter(X, 3, labeled=[0], weights=weights)
    idx, scores, cover = kcenter_greedy(X, 3, labeled=[0], weights=weights)
    assert sel.indices[0] == 2
    np.testing.assert_array_equal(sel.indices, idx)
    np.testing.assert_allclose(sel.extra["covering_radius"], cover, rtol=1e-15)
    # and with weights that flip the order by less than float32 resolution
    if weighted:
        w = np.array([1.0, 1.0 + 3e-10, 1.0, 1.0, 1.0])
        sel = kcenter(X, 2, labeled=[0], weights=w)
        idx, _, _ = kcenter_greedy(X, 2, labeled=[0], weights=w)
        assert sel.indices[0] == 1
        np.testing.assert_array_equal(sel.indices, idx)


def test_random_first_pick_alone_in_its_group():
    # Without a labeled set the first pick is random; with about one group per row it is
    # often alone in its group, which must still be rescanned (its only row became a
    # centre), or the covering radius would read a stale statistic.
    rng = np.random.default_rng(0)
    for seed in range(20):
        X = rng.standard_normal((60, 3)).astype(np.float32)
        sel = _kcenter(X, 10, seed=seed, grouping="cells", n_groups=50)
        idx, _, cover = kcenter_greedy(X, 10, seed=seed)
        np.testing.assert_array_equal(sel.indices, idx)
        np.testing.assert_allclose(sel.extra["covering_radius"], cover, rtol=1e-9)


@pytest.mark.parametrize("k", [1, 3])
def test_empty_groups_without_labeled_set(k):
    # Cells centred on duplicate rows: all rows go to one of them, the others stay empty
    # until the split drops them; no empty group may keep the "scan me" statistic of the
    # first pick without a labeled set (found by the property test with k-means groups:
    # covering radius 0 instead of 3).
    X = np.array([[0.0], [1.0], [1.0], [1.0], [3.0], [3.0], [3.0], [3.0]], dtype=np.float32)
    for n_groups in (4, 6, 8):  # cells centred on duplicate rows: all rows go to one of them
        for seed in range(10):
            sel = _kcenter(X, k, seed=seed, grouping="cells", n_groups=n_groups)
            idx, _, cover = kcenter_greedy(X, k, seed=seed)
            np.testing.assert_array_equal(sel.indices, idx)
            np.testing.assert_allclose(sel.extra["covering_radius"], cover, rtol=1e-9)


def test_picks_leave_no_garbage_behind():
    # Numba's dispatcher leaves cyclic garbage (~400 bytes) per call of a function with 20
    # or more arguments; the per-pick kernels must stay below that, or memory grows with k
    # until a full garbage collection.
    import gc
    import tracemalloc

    rng = np.random.default_rng(25)
    X = rng.normal(size=(3000, 4)).astype(np.float32)
    _kcenter(X, 400, labeled=np.arange(60))
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        _kcenter(X, 400, labeled=np.arange(60))
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    retained = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert retained < 40_000  # was 400 picks x 400 bytes with 20 kernel arguments


@pytest.mark.parametrize("path, data", [("grouped", "blobs"), (None, "blobs"),
                                        (None, "gaussian")])
@pytest.mark.parametrize("n_labeled", [50, 600])  # random-row cells, labeled cells
def test_numpy_memory_stays_within_16_bytes_per_row(n_labeled, path, data):
    # Every NumPy array kcenter allocates (tracemalloc sees them all, deterministically):
    # 10 bytes per row of state, the rest bounded; no O(N d) temporary (an isfinite mask,
    # a float64 copy of the pool or of the rows being searched would each break this).
    # The default path runs the lazy band (4 bytes per row, 16 per band row) and, on
    # clustered data, gives up on it for the groups: its arrays must be gone by then.
    import tracemalloc

    rng = np.random.default_rng(26)
    if data == "blobs":
        X = blobs(rng, 200_000, 32, 300, spread=0.3).astype(np.float32)
    else:
        X = rng.standard_normal((200_000, 32), dtype=np.float32)
    labeled = rng.choice(200_000, n_labeled, replace=False)
    for warm_path in ("grouped", "lazy"):  # compile outside the trace
        _kcenter(X[:40_000], 50, labeled=labeled[labeled < 40_000], path=warm_path)
    tracemalloc.start()
    try:
        stats = {}
        _kcenter(X, 50, labeled=labeled, stats=stats, path=path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if stats["path"] == "grouped":
        assert stats["grouping"] == ("labeled" if n_labeled == 600 else "cells")
    if path is None and data == "gaussian":
        assert stats["path"] == "lazy"
    assert peak < 16 * X.shape[0], f"{peak / X.shape[0]:.1f} bytes per row"


# --------------------------------------------------------------------------- lazy path


def _lazy_module():
    import importlib

    return importlib.import_module("fastal.diversity.kcenter")


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("case", ["random", "blobs", "duplicates", "grid1d", "embeddings",
                                  "none"])
@pytest.mark.parametrize("bounds", ["lists", "probes"])  # see _labeled_upper
@pytest.mark.parametrize("at_once", [True, False])  # see _LAZY_BAND_YIELD and _LATE
def test_lazy_band_of_one_row_widened_many_times(metric, case, bounds, at_once, monkeypatch):
    # A band that starts at one row and doubles: many widenings, rows entering the heap
    # after many picks (compared with all of them on entry), ties at the threshold. With
    # ``at_once``, a band with too few keys above its threshold for the picks still to make
    # is widened again before any pick (by half); without, only when its top falls below.
    module = _lazy_module()
    if at_once:  # however short the band
        monkeypatch.setattr(module, "_LAZY_BAND_LATE", 0.0)
    else:
        monkeypatch.setattr(module, "_LAZY_BAND_YIELD", 0.0)
    monkeypatch.setattr(module, "_UNEVEN_LISTS", 0 if bounds == "lists" else 1000)
    monkeypatch.setattr(module, "_LAZY_BAND_MIN", 1)
    monkeypatch.setattr(module, "_LAZY_BAND_PER_PICK", 0)
    monkeypatch.setattr(module, "_LAZY_SCAN_LABELED", 8)  # lists + FAISS for 20+ points
    rng = np.random.default_rng(30)
    labeled = rng.choice(800, 60, replace=False)
    if case == "random":
        X = rng.normal(size=(800, 5)).astype(np.float32)
    elif case == "blobs":
        X = blobs(rng, 800, 4, 12, spread=0.2).astype(np.float32)
    elif case == "duplicates":
        X = rng.normal(size=(9, 3)).astype(np.float32)[rng.integers(9, size=800)]
    elif case == "grid1d":
        X = (np.arange(800, dtype=np.float32) % 17)[:, None] + (1.0 if metric == "cosine" else 0)
    elif case == "embeddings":
        X = rng.normal(size=(800, 5))
        labeled = rng.normal(size=(30, 5))
    else:
        X = rng.normal(size=(800, 5)).astype(np.float32)
        labeled = None
    n_unlabeled = 800 - (60 if case not in ("embeddings", "none") else 0)
    # float64 and cosine pools: the first 20 picks' images kept, past them float64 sums
    monkeypatch.setattr(importlib.import_module("fastal._kernels.kcenter_scan"),
                        "PICK_IMAGE_BYTES", 4 * X.shape[1] * 20)
    for k in (1, 37, 300, n_unlabeled):
        stats = {}
        sel = _kcenter(X, k, labeled=labeled, metric=metric, seed=5, path="lazy", stats=stats)
        idx, scores, cover = kcenter_greedy(X, k, labeled=labeled, metric=metric, seed=5)
        np.testing.assert_array_equal(sel.indices, idx)
        np.testing.assert_allclose(sel.scores, scores.astype(np.float32), rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(sel.extra["covering_radius"], cover, rtol=1e-9, atol=1e-12)
        assert stats["path"] == "lazy"
        if k >= 37 and case in ("random", "blobs", "embeddings", "none"):
            assert stats["band_widenings"] > 3
            # at once: every widening before the first pick from a band of one row
            assert (stats["band_widenings_at_once"] > 3) == at_once


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("case", ["random", "blobs", "duplicates", "embeddings", "none"])
@pytest.mark.parametrize("weights", ["uniform", "integers"])
def test_weighted_lazy_bands_widened_many_times(metric, case, weights, monkeypatch):
    # Weighted: the picks' band ranks rows by U w, the radii's band by U; both start at one
    # row and double (many widenings, rows entering after many picks). Integer weights with
    # zeros: exact score ties (to the lower row) and rows that score 0 at any distance.
    module = _lazy_module()
    monkeypatch.setattr(module, "_LAZY_BAND_MIN", 1)
    monkeypatch.setattr(module, "_LAZY_BAND_PER_PICK", 0)
    monkeypatch.setattr(module, "_LAZY_SCAN_LABELED", 8)
    monkeypatch.setattr(importlib.import_module("fastal._kernels.kcenter_scan"),
                        "PICK_IMAGE_BYTES", 4 * 5 * 20)
    rng = np.random.default_rng(33)
    labeled = rng.choice(800, 60, replace=False)
    X = {"random": lambda: rng.normal(size=(800, 5)).astype(np.float32),
         "blobs": lambda: blobs(rng, 800, 5, 12, spread=0.2).astype(np.float32),
         "duplicates": lambda: rng.normal(size=(9, 5)).astype(np.float32)[
             rng.integers(9, size=800)],
         "embeddings": lambda: rng.normal(size=(800, 5)),
         "none": lambda: rng.normal(size=(800, 5)).astype(np.float32)}[case]()
    if case == "embeddings":
        labeled = rng.normal(size=(30, 5))
    elif case == "none":
        labeled = None
    w = (rng.random(800) if weights == "uniform"
         else rng.integers(0, 3, size=800).astype(np.float32))
    n_unlabeled = 800 - (60 if case not in ("embeddings", "none") else 0)
    for k in (1, 37, 300, n_unlabeled):
        stats = {}
        sel = _kcenter(X, k, labeled=labeled, metric=metric, seed=5, weights=w, path="lazy",
                       stats=stats)
        small = _kcenter(X, k, labeled=labeled, metric=metric, seed=5, weights=w,
                         path="small")
        idx, scores, cover = kcenter_greedy(X, k, labeled=labeled, metric=metric, seed=5,
                                            weights=w)
        assert stats["path"] == "lazy"
        np.testing.assert_array_equal(sel.indices, idx)
        np.testing.assert_allclose(sel.scores, scores.astype(np.float32), rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(sel.extra["covering_radius"], cover, rtol=1e-9, atol=1e-12)
        for name in ("indices", "scores"):  # the full scans' float64 bits
            np.testing.assert_array_equal(getattr(sel, name), getattr(small, name))
        np.testing.assert_array_equal(sel.extra["covering_radius"],
                                      small.extra["covering_radius"])
        if k >= 37 and case != "duplicates":
            assert stats["band_widenings"] > 3 and stats["radius_band_widenings"] > 3


@pytest.mark.parametrize("labeled_kind", ["positions", "none"])
@pytest.mark.parametrize("radii", [False, True])
def test_weighted_lazy_gives_up_to_groups_with_the_same_picks(labeled_kind, radii,
                                                              monkeypatch):
    # the picks' band or (picks made) the radii's band outgrows its share of the pool: the
    # groups (with a labeled set) or the float32 scans (without) take over from scratch
    # with the same answer
    module = _lazy_module()
    monkeypatch.setattr(module, "_LAZY_SMALL_POOL", 0)
    monkeypatch.setattr(module, "_LAZY_BAND_MIN", 16)
    rng = np.random.default_rng(34)
    X = blobs(rng, 3000, 6, 40, spread=0.1).astype(np.float32)
    labeled = rng.choice(3000, 20, replace=False) if labeled_kind == "positions" else None
    w = rng.random(3000)
    k = 200
    if radii:  # the picks' band stays small: weights that single out 500 rows
        w[rng.permutation(3000)[:2500]] = 0.0
        k = 30
        monkeypatch.setattr(module, "_LAZY_MAX_BAND", 0.2)
    else:
        monkeypatch.setattr(module, "_LAZY_MAX_BAND", 0.05)
    stats = {}
    sel = _kcenter(X, k, labeled=labeled, seed=3, weights=w, stats=stats, small_jobs=False)
    idx, scores, cover = kcenter_greedy(X, k, labeled=labeled, seed=3, weights=w)
    assert stats["path"] == ("grouped" if labeled_kind == "positions" else "scan")
    assert ("lazy_radius_band_abandoned" in stats) == radii
    assert ("lazy_band_abandoned" in stats) != radii
    np.testing.assert_array_equal(sel.indices, idx)
    np.testing.assert_allclose(sel.extra["covering_radius"], cover, rtol=1e-9, atol=1e-12)


def _lazy_gives_up_on_blobs(labeled_kind, monkeypatch, **constants):
    """Exact picks on 3000 clustered rows with the lazy path's constants patched, after the
    lazy path gave up: to the groups with a labeled set, else to the float32 scans.
    Returns the stats."""
    module = _lazy_module()
    monkeypatch.setattr(module, "_LAZY_SMALL_POOL", 0)
    for name, value in constants.items():
        monkeypatch.setattr(module, name, value)
    rng = np.random.default_rng(31)
    X = blobs(rng, 3000, 6, 40, spread=0.1).astype(np.float32)
    labeled = rng.choice(3000, 20, replace=False) if labeled_kind == "positions" else None
    stats = {}
    sel = _kcenter(X, 200, labeled=labeled, seed=3, stats=stats)
    idx, scores, cover = kcenter_greedy(X, 200, labeled=labeled, seed=3)
    assert stats["path"] == ("grouped" if labeled_kind == "positions" else "scan")
    np.testing.assert_array_equal(sel.indices, idx)
    np.testing.assert_allclose(sel.extra["covering_radius"], cover, rtol=1e-9, atol=1e-12)
    return stats


@pytest.mark.parametrize("labeled_kind", ["positions", "none"])
def test_lazy_gives_up_to_groups_with_the_same_picks(labeled_kind, monkeypatch):
    # When the band outgrows its share of the pool, the groups take over from scratch: same
    # picks (the random first pick is drawn once, before either path runs).
    stats = _lazy_gives_up_on_blobs(labeled_kind, monkeypatch, _LAZY_MAX_BAND=0.05,
                                    _LAZY_BAND_MIN=16)
    assert stats["lazy_band_abandoned"] > 0.05 * 3000


@pytest.mark.parametrize("labeled_kind", ["positions", "none"])
def test_lazy_gives_up_when_the_band_grows_like_the_picks(labeled_kind, monkeypatch):
    # Clustered data: each pick brings a cluster's worth of rows into the band, whose growth
    # projected as a power of the picks passes the limit long before the band itself does.
    # The other two rules are switched off (limit 10x the pool): this rule alone gives up.
    stats = _lazy_gives_up_on_blobs(labeled_kind, monkeypatch, _LAZY_MAX_BAND=10.0,
                                    _LAZY_GROWTH_MAX_BAND=0.3, _LAZY_BAND_MIN=1,
                                    _LAZY_BAND_PER_PICK=0)
    assert stats["lazy_band_growth_projected"] > 0.3 * 3000  # the others: 10x the pool
    rng = np.random.default_rng(32)
    # unstructured data: the band grows slower than the picks, the lazy path finishes
    # (with a labeled set: without one the first bounds are distances to the first pick,
    # loose on such data, and the band doubles at every pick at first)
    G = rng.standard_normal((10000, 16)).astype(np.float32)
    labeled = rng.choice(10000, 20, replace=False)
    stats = {}
    sel = _kcenter(G, 100, labeled=labeled, seed=3, stats=stats)
    assert stats["path"] == "lazy" and stats["band_widenings"] > 3
    np.testing.assert_array_equal(sel.indices, kcenter_greedy(G, 100, labeled=labeled, seed=3)[0])


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("case", ["random", "blobs", "duplicates", "grid1d", "float64",
                                  "near-ties", "offset", "tiny", "huge"])
@pytest.mark.parametrize("half", [True, False])
def test_scan_path_is_exact(metric, case, half, monkeypatch):
    # Full scans (no labeled set), ties to the lowest row, including ties between tasks
    # (tasks of 7 rows here). float32 passes with certified intervals and float64 rechecks
    # over a half image (jobs of 8 picks or more), else the pool (float32 l2) or a float32
    # image (near-duplicate pools fall back from the halves to float32, then to float64
    # passes), on two threads of at least 7 rows, in blocks of 5 rows, with prefetches.
    scan = importlib.import_module("fastal._kernels.kcenter_scan")
    monkeypatch.setattr(_lazy_module(), "_half_pays", lambda n, d, k: half and k >= 16)
    monkeypatch.setattr(scan, "ROWS_PER_TASK", 7)
    monkeypatch.setattr(scan, "MIN_ROWS_PER_THREAD", 7)
    monkeypatch.setattr(scan, "BLOCK32", 5)
    monkeypatch.setattr(scan, "PREFETCH_BYTES", 0)
    X = _scan_case(case, metric)
    # float64 and cosine pools: the first 20 picks' images kept, past them float64 sums
    monkeypatch.setattr(scan, "PICK_IMAGE_BYTES", 4 * X.shape[1] * 20)
    for k in (1, 37, 500):
        stats = {}
        sel = _kcenter(X, k, metric=metric, seed=5, path="scan", stats=stats)
        if metric == "l2" and case in ("random", "blobs", "near-ties", "offset", "huge"):
            assert stats["precision"] == ("float16" if half and k >= 16 else "float32")
        idx, scores, cover = kcenter_greedy(X, k, metric=metric, seed=5)
        np.testing.assert_array_equal(sel.indices, idx)
        np.testing.assert_allclose(sel.scores, scores.astype(np.float32), rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(sel.extra["covering_radius"], cover, rtol=1e-9, atol=1e-12)
        grouped = _kcenter(X, k, metric=metric, seed=5, path="grouped")
        np.testing.assert_array_equal(grouped.indices, sel.indices)


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("case", ["random", "blobs", "duplicates", "grid1d", "float64",
                                  "near-ties", "offset", "tiny", "huge"])
@pytest.mark.parametrize("half", [True, False])
@pytest.mark.parametrize("weights", ["uniform", "integers", "spread"])
def test_weighted_scan_path_is_exact(metric, case, half, weights, monkeypatch):
    # Weighted full scans: candidates by bounds of w^2 sq (l2) or w sq (cosine), the pick
    # the largest exact w D, the covering radius the largest exact D. The same bits as the
    # float64 full scans ("small"), on the same threads and blocks as the unweighted test.
    # Integer weights with zeros: score ties and an all-zero phase (candidates outgrow the
    # limit there: the float64 scans take over); "spread": weights over 1e-15 to 1e15.
    scan = importlib.import_module("fastal._kernels.kcenter_scan")
    monkeypatch.setattr(_lazy_module(), "_half_pays", lambda n, d, k: half and k >= 16)
    monkeypatch.setattr(scan, "MIN_ROWS_PER_THREAD", 7)
    monkeypatch.setattr(scan, "BLOCK32", 5)
    monkeypatch.setattr(scan, "PREFETCH_BYTES", 0)
    X = _scan_case(case, metric)
    monkeypatch.setattr(scan, "PICK_IMAGE_BYTES", 4 * X.shape[1] * 20)
    rng = np.random.default_rng(42)
    w = {"uniform": lambda: rng.random(500),
         "integers": lambda: rng.integers(0, 3, size=500).astype(np.float32),
         "spread": lambda: 10.0 ** rng.uniform(-15, 15, size=500)}[weights]()
    for k in (1, 37, 500):
        stats = {}
        sel = _kcenter(X, k, metric=metric, seed=5, path="scan", weights=w, stats=stats)
        small = _kcenter(X, k, metric=metric, seed=5, path="small", weights=w)
        if (metric == "l2" and k < 500 and weights != "integers"
                and case in ("random", "blobs", "near-ties", "offset", "huge")):
            assert stats["precision"] == ("float16" if half and k >= 16 else "float32")
        for name in ("indices", "scores"):
            np.testing.assert_array_equal(getattr(sel, name), getattr(small, name))
        np.testing.assert_array_equal(sel.extra["covering_radius"],
                                      small.extra["covering_radius"])
        if k == 37:
            idx, scores, cover = kcenter_greedy(X, k, metric=metric, seed=5, weights=w)
            np.testing.assert_array_equal(sel.indices, idx)
            np.testing.assert_allclose(sel.extra["covering_radius"], cover, rtol=1e-9,
                                       atol=1e-12)


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_weighted_scans_give_up_to_float64_scans(metric, monkeypatch):
    # more candidates than the limit (integer weights with zeros: their all-zero phase makes
    # every row a candidate): the float32 scans give up, the float64 scans finish, same bits
    module = _lazy_module()
    monkeypatch.setattr(module, "_SCAN32_MAX_CANDIDATES", 8)
    rng = np.random.default_rng(43)
    X = rng.normal(size=(400, 6)).astype(np.float32)
    w = rng.integers(0, 2, size=400).astype(np.float64)
    stats = {}
    sel = _kcenter(X, 300, metric=metric, seed=1, path="scan", weights=w, stats=stats)
    assert stats["scan32_abandoned_at"] >= 1 and "precision" not in stats
    small = _kcenter(X, 300, metric=metric, seed=1, path="small", weights=w)
    for name in ("indices", "scores"):
        np.testing.assert_array_equal(getattr(sel, name), getattr(small, name))
    np.testing.assert_array_equal(sel.extra["covering_radius"], small.extra["covering_radius"])
    # weights whose keys would leave float64's normal range: the float64 scans directly
    stats = {}
    tiny = np.where(w > 0, 1e-200, 0.0)
    sel = _kcenter(X, 30, metric=metric, seed=1, path="scan", weights=tiny, stats=stats)
    assert "scan32_abandoned_at" not in stats and "precision" not in stats
    np.testing.assert_array_equal(
        sel.indices, _kcenter(X, 30, metric=metric, seed=1, path="small", weights=tiny).indices)


def _scan_case(case, metric):
    """The pools of the scan tests: 500 rows."""
    rng = np.random.default_rng(40)
    if case == "random":
        X = rng.normal(size=(500, 5)).astype(np.float32)
    elif case == "blobs":
        X = blobs(rng, 500, 4, 12, spread=0.2).astype(np.float32)
    elif case == "duplicates":
        X = rng.normal(size=(9, 3)).astype(np.float32)[rng.integers(9, size=500)]
    elif case == "grid1d":
        X = (np.arange(500, dtype=np.float32) % 17)[:, None] + (1.0 if metric == "cosine" else 0)
    elif case == "float64":
        X = rng.normal(size=(500, 5))
    elif case == "near-ties":  # points on a sphere, distances equal to within float32
        X = rng.normal(size=(500, 16))
        X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
        X[250:] = X[:250] + np.float32(1e-7) * rng.normal(size=(250, 16)).astype(np.float32)
    elif case == "offset":  # far from the origin, small distances
        X = (blobs(rng, 500, 4, 12, spread=0.01) + 1e4).astype(np.float32)
    elif case == "tiny":  # squared distances below float32's normal range
        X = (rng.normal(size=(500, 5)) * 1e-21).astype(np.float32)
    else:  # just under the l2 range limit
        X = (rng.normal(size=(500, 5)) * 3e17).astype(np.float32)
    return X


@pytest.mark.parametrize("n", [129, 200, 256, 300])
def test_half_image_scans_on_threads_that_own_no_block(n, monkeypatch):
    # The threads of a half image's scans own whole blocks of HALF_BLOCK (128) rows: with
    # two threads on 129-255 rows the first owns none and the second all; at 256 one block
    # each; at 300 the second owns a short last block. Same picks as the reference.
    module = _lazy_module()
    scan = importlib.import_module("fastal._kernels.kcenter_scan")
    monkeypatch.setattr(module, "_half_pays", lambda n, d, k: True)
    monkeypatch.setattr(scan, "MIN_ROWS_PER_THREAD", 7)
    X = np.random.default_rng(n).normal(size=(n, 6)).astype(np.float32)
    before = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        stats = {}
        sel = _kcenter(X, 40, seed=3, path="scan", stats=stats)
    finally:
        numba.set_num_threads(before)
    assert stats["precision"] == "float16"
    np.testing.assert_array_equal(sel.indices, kcenter_greedy(X, 40, seed=3)[0])


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_scans_fall_back_from_a_coarse_half_image_to_float32(metric, monkeypatch):
    # Rows near 1,000 a few thousandths apart: halves (0.5 apart there) cannot tell them
    # apart, float32 can. The half image's candidates outgrow the limit and the scans
    # start over on the float32 pool or image, with the same picks.
    module = _lazy_module()
    scan = importlib.import_module("fastal._kernels.kcenter_scan")
    monkeypatch.setattr(module, "_half_pays", lambda n, d, k: True)
    monkeypatch.setattr(module, "_SCAN32_MAX_CANDIDATES", 40)
    monkeypatch.setattr(scan, "MIN_ROWS_PER_THREAD", 7)
    rng = np.random.default_rng(41)
    X = (1000.0 + 0.01 * rng.normal(size=(600, 6))).astype(np.float32)
    stats = {}
    sel = _kcenter(X, 60, metric=metric, seed=2, path="scan", stats=stats)
    assert stats["half_abandoned_at"] >= 1 and stats["half_candidates"] > 40
    assert stats["precision"] == "float32"
    np.testing.assert_array_equal(sel.indices, kcenter_greedy(X, 60, metric=metric, seed=2)[0])


def test_half_images_only_for_large_jobs(monkeypatch):
    module = _lazy_module()
    pays = module._half_pays
    limit = module._HALF_MIN_WORK
    n = -(-limit // (16 * 50))  # the fewest rows of 50 columns for 16 picks
    assert pays(n, 50, 16) and not pays(n - 1, 50, 16)
    assert not pays(10**6, 50, 15)  # too few picks
    assert pays(10**6, 2, 1000)
    # the image's blocks of HALF_BLOCK rows, the last one whole
    block = importlib.import_module("fastal._kernels.kcenter_scan").HALF_BLOCK
    monkeypatch.setattr(module, "_IMAGE_BYTES", 2 * 8 * block * 50)
    assert pays(8 * block, 50, 10**6) and not pays(8 * block + 1, 50, 10**6)


def test_scan_path_takes_no_labeled_set():
    X = np.random.default_rng(0).normal(size=(50, 3))
    with pytest.raises(ArgumentError, match="scan"):
        _kcenter(X, 3, labeled=[0, 1], path="scan")


def test_unstructured_data_without_labels_goes_to_the_scans(monkeypatch):
    # Without a labeled set the lazy path gives up (bounds from one pick are loose). Pools
    # then go to the float32 scans (through a half image); when no image fits
    # _IMAGE_BYTES, float32 l2 pools to the float32 scans of the pool itself, others to
    # the float64 scans when the groups skip
    # nothing on Gaussian data (measured on a sample before they are built, or over their
    # first picks), and to the groups on clustered data.
    module = _lazy_module()
    monkeypatch.setattr(module, "_LAZY_SMALL_POOL", 0)
    monkeypatch.setattr(module, "_SCAN_SAMPLE_ROWS", 2000)
    monkeypatch.setattr(module, "_SCAN_SAMPLE_SHARE", 0.98)  # (0.995 is for 16k-row samples)
    rng = np.random.default_rng(41)
    G = rng.normal(size=(8000, 64))
    expected = kcenter_greedy(G, 60, seed=2)[0]
    stats = {}
    sel = _kcenter(G.astype(np.float32), 60, seed=2, stats=stats)
    assert stats["path"] == "scan" and stats["precision"] == "float32"  # a small job
    np.testing.assert_array_equal(sel.indices, kcenter_greedy(G.astype(np.float32), 60,
                                                              seed=2)[0])
    monkeypatch.setattr(module, "_HALF_MIN_WORK", 8000 * 60 * 64)  # at the limit
    stats = {}
    sel = _kcenter(G.astype(np.float32), 60, seed=2, stats=stats)
    assert stats["path"] == "scan" and stats["precision"] == "float16"
    assert "sampled_eval_share" not in stats
    np.testing.assert_array_equal(sel.indices, kcenter_greedy(G.astype(np.float32), 60,
                                                              seed=2)[0])
    for metric, pool in (("l2", G), ("cosine", G), ("cosine", G.astype(np.float32))):
        stats = {}
        sel = _kcenter(pool, 60, seed=2, metric=metric, stats=stats)
        assert stats["path"] == "scan" and stats["precision"] == "float16"
        np.testing.assert_array_equal(sel.indices,
                                      kcenter_greedy(pool, 60, seed=2, metric=metric)[0])
    monkeypatch.setattr(module, "_IMAGE_BYTES", 0)  # no image fits
    stats = {}
    sel = _kcenter(G.astype(np.float32), 60, seed=2, stats=stats)
    assert stats["path"] == "scan" and stats["precision"] == "float32"
    np.testing.assert_array_equal(sel.indices, kcenter_greedy(G.astype(np.float32), 60,
                                                              seed=2)[0])
    stats = {}
    sel = _kcenter(G, 60, seed=2, stats=stats)  # float64, too large for an image
    assert stats["path"] == "scan" and stats["sampled_eval_share"] >= 0.98
    assert "precision" not in stats
    np.testing.assert_array_equal(sel.indices, expected)
    monkeypatch.setattr(module, "_SCAN_SAMPLE_SHARE", 2.0)  # the sample never decides
    stats = {}
    sel = _kcenter(G, 60, seed=2, stats=stats)
    assert stats["path"] == "scan" and stats["groups_abandoned_at"] == 8
    np.testing.assert_array_equal(sel.indices, expected)
    # clustered data: the groups prune and stay; an explicit path is never changed
    monkeypatch.setattr(module, "_SCAN_SAMPLE_SHARE", 0.98)
    B = blobs(rng, 8000, 6, 30, spread=0.05)
    stats = {}
    sel = _kcenter(B, 60, seed=2, stats=stats)
    assert stats["path"] == "grouped" and stats["sampled_eval_share"] < 0.9
    np.testing.assert_array_equal(sel.indices, kcenter_greedy(B, 60, seed=2)[0])
    stats = {}
    _kcenter(G, 60, seed=2, stats=stats, path="grouped")
    assert stats["path"] == "grouped"


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lazy_distances_to_the_picks_are_the_coordinate_order_sums(metric, dtype):
    # Band rows meet the picks four at a time (independent sums); each distance must still
    # be the float64 sum in coordinate order, bit for bit: 0-9 picks cover the groups of
    # four and every tail.
    from fastal._kernels import kcenter_lazy as kl

    rng = np.random.default_rng(5)
    X = (rng.normal(size=(60, 13)) * rng.uniform(1e-3, 1e3, size=13)).astype(dtype)
    # near-ties: row 50 near the origin, the first five picks at distances about
    # 1 + i * 1e-7 (their float32 intervals overlap: each must get its float64 sum, the
    # least kept)
    X[50] = 0.0
    X[50, 12] = 1e-3  # (not the origin: cosine)
    for n, p in enumerate([3, 11, 0, 19, 5]):
        X[p] = 0.0
        X[p, n] = (-1.0) ** n * (1.0 + (4 - n) * 1e-7)
    X[7] = X[3]  # a duplicate of a pick: distance 0
    cosine = metric == "cosine"
    inv = 1.0 / np.sqrt((X.astype(np.float64) ** 2).sum(axis=1)) if cosine else np.empty(0)
    scale = inv if cosine else np.ones(60)
    rows = np.arange(20, 60, dtype=np.int64)
    rows = np.concatenate([rows, [7]])
    for n_picked in range(10):
        picked = np.array([3, 11, 0, 19, 5, 8, 2, 14, 17, 1][:n_picked], dtype=np.int64)
        key = np.full(rows.size, np.inf)
        images = kl.pick_images(X, cosine, 10)  # float64 and cosine pools: the picks' images
        if images[0] is not None:
            P, r_P, _, n_img = images
            for q, c in enumerate(picked):
                r_P[q] = _image_of(X, c, scale[c], P[q])
            n_img[0] = n_picked
        kl.rows_picked_mindist(X, rows, inv, cosine, picked, n_picked, key, images)
        want = np.full(rows.size, np.inf)
        for c in picked:
            t = X[rows].astype(np.float64) * scale[rows, None] - X[c].astype(np.float64) * scale[c]
            want = np.minimum(want, lane_sum(t * t))
        want = want / 2 if cosine else np.sqrt(want)
        np.testing.assert_array_equal(key, want)


@pytest.mark.parametrize("metric", ["l2", "cosine"])
# the bounds' kernel, with the lists or the probes alone (uneven lists); FAISS's searches
# with the lists copied at once or a few points at a time (labeled points too many for a
# chunk's memory)
@pytest.mark.parametrize("mode", ["kernel", "probes", "lists", "lists-budget"])
def test_lazy_bounds_are_upper_bounds(metric, mode, monkeypatch):
    # The bound of every row must be >= its exact float64 distance to the labeled set
    # (rounded up to float32, with a margin for the summation order), and reach it when the
    # nearest point is in the row's lists. Offset data: large norms, small distances.
    module = _lazy_module()
    if mode.startswith("lists"):
        monkeypatch.setattr(module, "CHUNK_BYTES", 0)
        monkeypatch.setattr(module, "_LABELED_INDEX_ROW_BYTES", 0)
    if mode == "lists-budget":
        monkeypatch.setattr(module, "_LABELED_INDEX_BYTES", 7 * 4 * 7)
    monkeypatch.setattr(module, "_UNEVEN_LISTS", 1000 if mode == "probes" else 0)
    calls = []
    for name in ("_probe_upper", "knn_l2"):
        monkeypatch.setattr(module, name, lambda *a, _f=getattr(module, name), _n=name:
                            calls.append(_n) or _f(*a))
    rng = np.random.default_rng(32)
    cosine = metric == "cosine"
    for offset in (0.0, 1e3):
        X = rng.normal(size=(4000, 7)) + offset
        lab_rows = rng.choice(4000, 400, replace=False).astype(np.int64)
        P = X / np.linalg.norm(X, axis=1)[:, None] if cosine else X
        inv = (1.0 / np.sqrt((X * X).sum(axis=1))) if cosine else np.empty(0)
        probes, offsets, members = module._probe_lists(X, lab_rows, inv, cosine)
        assert probes.size == 20 and np.array_equal(np.sort(members), np.arange(400))
        shift = P[lab_rows].mean(axis=0).astype(np.float32).astype(np.float64)
        upper = np.empty(4000, dtype=np.float32)
        module._labeled_upper(X, inv, cosine, shift, X, lab_rows, inv, 1.0 + 30 * 2.0**-53,
                              333, upper)
        sq = ((P[:, None, :] - P[lab_rows][None, :, :]) ** 2).sum(axis=2).min(axis=1)
        exact = sq / 2 if cosine else np.sqrt(sq)
        assert (upper.astype(np.float64) >= exact).all()
        tight = np.mean(upper <= np.nextafter(exact.astype(np.float32), np.inf) * 1.0001)
        # tight for most rows with the lists (the nearest point is usually in them), for a
        # few with the probes alone (20 of 400 points)
        assert tight > (0.03 if mode == "probes" else 0.5)
        assert ("_probe_upper" in calls) == (mode in ("kernel", "probes"))
        assert ("knn_l2" in calls) == (mode not in ("kernel", "probes"))
        calls.clear()


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_lazy_completion_falls_back_on_near_ties(metric, monkeypatch):
    # Band rows get their exact distance to the labeled set from FAISS's two candidates and
    # the float32 error certificate; labeled points on a tiny ring around each row defeat
    # the certificate, so those rows must be rescanned (else FAISS's mis-ranking shows).
    module = _lazy_module()
    monkeypatch.setattr(module, "_LAZY_SCAN_LABELED", 4)
    monkeypatch.setattr(module, "_LAZY_BAND_MIN", 4000)  # every row is a band row
    rng = np.random.default_rng(33)
    X = rng.normal(size=(300, 3)) * 100
    labeled = np.repeat(X[:40], 12, axis=0) + rng.normal(size=(480, 3)) * 1e-5
    stats = {}
    sel = _kcenter(X, 120, labeled=labeled, metric=metric, path="lazy", stats=stats)
    idx, _, cover = kcenter_greedy(X, 120, labeled=labeled, metric=metric)
    np.testing.assert_array_equal(sel.indices, idx)
    np.testing.assert_allclose(sel.extra["covering_radius"], cover, rtol=1e-9, atol=1e-12)
    assert stats["fallback_rows"] > 0


@pytest.mark.parametrize("path", ["lazy", "grouped", "weighted"])
def test_values_whose_squared_distances_leave_float32_are_an_error(path):
    # the grouped kernels keep rounded-up float32 squared distances: past float32's range
    # they read out of bounds (a segfault at |values| ~ 1e20); every path refuses such data
    # and gives the same picks just under the limit
    def run(x):
        if path == "weighted":
            return _kcenter(x, 20, seed=0, weights=np.ones(x.shape[0]))
        return _kcenter(x, 20, seed=0, path=path)

    base = np.random.default_rng(3).standard_normal((300, 4)).astype(np.float32)
    with pytest.raises(FastalError, match="float32.s range"):
        run(base * np.float32(1e20))
    near = base * np.float32(2.0**60 / np.abs(base).max())  # 1.15e18, the limit is 2.3e18
    assert np.array_equal(run(near).indices, _kcenter(base, 20, seed=0, path="lazy").indices)


def test_small_pools_without_labels_give_up_to_the_scans(monkeypatch):
    # Pools under _LAZY_SMALL_POOL rows never leave the lazy path for the groups (slow on
    # small pools), but float32 scans (through a half image) are cheap at any size: without
    # labels they take over.
    monkeypatch.setattr(_lazy_module(), "_half_pays", lambda n, d, k: True)
    rng = np.random.default_rng(43)
    X = blobs(rng, 3000, 6, 40, spread=0.1)
    expected = kcenter_greedy(X.astype(np.float32), 200, seed=4)[0]
    stats = {}
    sel = _kcenter(X.astype(np.float32), 200, seed=4, stats=stats)
    assert stats["path"] == "scan" and stats["precision"] == "float16"
    np.testing.assert_array_equal(sel.indices, expected)
    for metric, pool in (("l2", X), ("cosine", X.astype(np.float32))):  # through an image
        stats = {}
        sel = _kcenter(pool, 200, seed=4, metric=metric, stats=stats)
        assert stats["path"] == "scan" and stats["precision"] == "float16"
        np.testing.assert_array_equal(sel.indices,
                                      kcenter_greedy(pool, 200, seed=4, metric=metric)[0])
    monkeypatch.setattr(_lazy_module(), "_IMAGE_BYTES", 0)  # no image fits: the lazy path
    stats = {}
    sel = _kcenter(X, 200, seed=4, stats=stats)
    assert stats["path"] == "lazy"
    np.testing.assert_array_equal(sel.indices, kcenter_greedy(X, 200, seed=4)[0])


# The scan kernels' helpers have no CPython wrapper (kcenter._HELPER): called through these.
@numba.njit
def _image_of(X, i, scale, out):
    return _scan.image_of(X, i, scale, out)


@numba.njit
def _image_bounds32(y, r_y, P, r_P, first, last, rel, slack, low):
    return _scan._image_bounds32(y, r_y, P, r_P, first, last, rel, slack, low)


@numba.njit
def _pass32(X, center, down, up, slack, radius, scale2, rel, slack0, m64, lower, upper,
            lower_bits, dist, first, last, ahead):
    return _scan._pass32(X, center, down, up, slack, radius, scale2, rel, slack0, m64, lower,
                         upper, lower_bits, dist, np.empty(X.shape[1], np.float32), first,
                         last, ahead)


@numba.njit
def _half_rows(X, inv_norm, cosine, s, image, radius, first, last):
    return _scan._half_rows(X, inv_norm, cosine, s, image, radius, first, last)


def _half_image(X, inv_norm, cosine, e):
    """The scans' half image of ``X`` (scale ``2^e``), its radii and ``1 / s^2``."""
    n, d = X.shape
    image = np.empty((_scan.half_blocks(n), d, _scan.HALF_BLOCK), np.uint16)
    radius = np.empty(n)
    _half_rows(X, np.empty(0) if inv_norm is None else inv_norm,
               _kc_kernels.metric_flag(cosine), 2.0**e, image, radius, 0, n)
    return image, radius, 2.0**(-2 * e)


def _exact_sq(x, c):
    return sum((Fraction(float(a)) - Fraction(float(b))) ** 2 for a, b in zip(x, c))


def _bracket_rows(d, scale, kind, seed):
    """12 float64 rows of dimension ``d`` for the bounds' bracket tests: normal, offset
    (cancellation), integer or mixed-magnitude values times ``scale``, clipped to the
    largest values the l2 range check lets in."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(12, d))
    if kind == "offset":
        X = 1e3 + 1e-3 * X
    elif kind == "integers":
        X = np.round(X * 3)
    elif kind == "mixed":
        X *= 10.0 ** rng.integers(-8, 8, size=(12, d))
    X *= scale
    limit = l2_value_limit(d)
    return np.clip(X, -limit, limit)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(d=st.integers(1, 40), scale=st.sampled_from([1e-30, 1e-21, 1e-3, 1.0, 1e4, 3e17, 1e30]),
       kind=st.sampled_from(["normal", "offset", "integers", "mixed", "near"]),
       seed=st.integers(0, 99), pool=st.sampled_from(["float64", "cosine"]))
def test_pick_bounds_through_images_bracket_the_float64_sums(d, scale, kind, seed, pool):
    # The lazy path's bounds of a row's distances to the picks for float64 and cosine pools
    # (image_of: a row's float32 image and radius; _image_bounds32): every lower bound at
    # most the float64 coordinate-order sum the exact keys are (_sq_rows, replayed here in
    # Python's float64), the smallest upper bound at least the smallest sum; tiny, huge,
    # offset, integer, mixed-magnitude, equal and nearly equal rows (their images equal:
    # only the radii separate them).
    scan = importlib.import_module("fastal._kernels.kcenter_scan")
    X = _bracket_rows(d, scale, kind, seed)
    X[5] = X[4]
    X[6] = X[4] * (1.0 + 1e-12) if kind == "near" else X[6]
    with np.errstate(divide="ignore", over="ignore"):
        inv = 1.0 / np.linalg.norm(X, axis=1) if pool == "cosine" else np.ones(12)
    if not np.isfinite(inv).all() or (pool == "cosine" and not (inv > 0).all()):
        return  # zero rows (cosine refuses them) or norms out of float64's range
    cosine = pool == "cosine"

    def sums(i, rows):  # _sq_rows: lane_sums' order, float64, no contraction
        out = []
        for p in rows:
            t = X[i].astype(np.float64) * float(inv[i]) - X[p].astype(np.float64) * float(inv[p])
            out.append(float(lane_sum((t * t)[None])[0]))
        return out

    picks = np.array([4, 0, 7, 9, 6, 2], dtype=np.int64)
    P = np.empty((picks.size, d), np.float32)
    r_P = np.array([_image_of(X, p, inv[p] if cosine else 1.0, P[s])
                    for s, p in enumerate(picks)])
    rel, slack = scan.bounds32(d)
    y = np.empty(d, np.float32)
    low = np.empty(picks.size)
    for i in (5, 6, 1, 11):
        r_y = _image_of(X, i, inv[i] if cosine else 1.0, y)
        exact = sums(i, picks)
        for first in (0, 2):
            least = _image_bounds32(y, r_y, P, r_P, first, picks.size, rel, slack, low)
            for s in range(first, picks.size):
                assert 0.0 <= low[s - first] <= exact[s]
            assert min(exact[first:]) <= least


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(d=st.integers(1, 40), scale=st.sampled_from([1e-30, 1e-21, 1e-3, 1.0, 1e4, 3e17, 1e30]),
       kind=st.sampled_from(["normal", "offset", "integers", "mixed"]), seed=st.integers(0, 99),
       pool=st.sampled_from(["float32", "float64", "cosine"]), half=st.booleans())
def test_float32_scan_bounds_bracket_the_exact_distance(d, scale, kind, seed, pool, half):
    # The float32 scans' bounds (factors32: float32 arithmetic; float64 and cosine pools
    # through a float32 image and each row's distance to it; any pool through a half
    # image, scaled by a power of two) around the exact squared distance of the points
    # (rational arithmetic; cosine: the rows times their float64 inverse norms, as the
    # exact distances scale them), for tiny (subnormal sums), huge (near the l2 range
    # limit), offset (cancellation) and equal rows, over several picks.
    scan = importlib.import_module("fastal._kernels.kcenter_scan")
    X = _bracket_rows(d, scale, kind, seed).astype(np.float32 if pool == "float32"
                                                   else np.float64)
    X[5] = X[4]  # a distance of exactly 0
    n = X.shape[0]
    points, image, radius, scale2, inv = X, X, None, 1.0, None
    if pool == "cosine":
        with np.errstate(divide="ignore", over="ignore"):
            inv = 1.0 / np.linalg.norm(X, axis=1)
        if not np.isfinite(inv).all():
            return  # zero rows (cosine refuses them) or norms out of float64's range
        points = X * inv[:, None]
    if half:
        e = scan.half_scale(X, inv, pool == "cosine")
        if e is None:  # outside the halves' scales: the float32 image then
            assert not 2.0**-85 <= np.abs(points).max() < 2.0**112
            return
        image, radius, scale2 = _half_image(X, inv, pool == "cosine", e)
        _check_half_layout(X, inv, e, image)
    elif pool != "float32":
        image, radius = scan.float32_image(X, inv, pool == "cosine", 5)
    rel, slack0 = scan.bounds32(image.shape[1])
    lower = np.full(n, np.inf, np.float32)
    upper = np.full(n, np.inf, np.float32)
    exact = [None] * n
    for center in (0, 4, 7):
        lower[center] = upper[center] = -1.0
        top = _pass32(image, center, *scan.factors32(d), radius, scale2, rel, slack0,
                           (d + 8) * 2.0**-52, lower, upper, lower.view(np.int32),
                           np.empty(scan.HALF_BLOCK if half else 5, np.float32), 0, n,
                           center % 2 * 3)
        for i in range(n):
            if lower[i] < 0:
                continue
            sq = _exact_sq(points[i], points[center])
            exact[i] = sq if exact[i] is None else min(exact[i], sq)
            assert 0 <= Fraction(float(lower[i])) <= exact[i]
            assert np.isposinf(upper[i]) or exact[i] <= Fraction(float(upper[i]))
        assert top == max(lower.view(np.int32))


def _check_half_layout(X, inv, e, image):
    """``image`` is the half image of ``X`` (scale ``2^e``; cosine: rows times ``inv``):
    blocks of ``HALF_BLOCK`` rows, each column of a block contiguous, the halves of the
    scaled float64 rows (rounded through float32, as the kernel does), zeros past the
    pool's end."""
    n, d = X.shape
    block = _scan.HALF_BLOCK
    assert image.dtype == np.uint16 and image.shape == (-(-n // block), d, block)
    rows = image.transpose(0, 2, 1).reshape(-1, d)
    assert not rows[n:].any()
    scale = 2.0**e if inv is None else 2.0**e * inv[:, None]
    halves = (X.astype(np.float64) * scale).astype(np.float32).astype(np.float16)
    np.testing.assert_array_equal(rows[:n], halves.view(np.uint16))


def test_half_image_blocks_and_a_pass_over_some_of_them():
    # A half image over three blocks (the last one short), made in the threads' pieces
    # (whole blocks, the last to the pool's end); a pass over the last two blocks' rows
    # (as a second thread's) brackets their exact distances and leaves the other rows.
    scan = importlib.import_module("fastal._kernels.kcenter_scan")
    block = scan.HALF_BLOCK
    rng = np.random.default_rng(8)
    n, d = 2 * block + 44, 13
    X = (rng.normal(size=(n, d)) * [10.0 ** (j % 5 - 2) for j in range(d)]).astype(np.float32)
    X[block] = X[block - 1]  # a distance of 0 across a block's edge
    e = scan.half_scale(X, None, False)
    image = np.full((scan.half_blocks(n), d, block), 0xFFFF, np.uint16)  # NaN halves
    radius = np.full(n, np.nan)
    for first, last in ((block, n), (0, block)):
        _half_rows(X, np.empty(0), None, 2.0**e, image, radius, first, last)
    _check_half_layout(X, None, e, image)
    assert np.isfinite(radius).all()
    rel, slack0 = scan.bounds32(d)
    lower = np.full(n, np.inf, np.float32)
    upper = np.full(n, np.inf, np.float32)
    for center in (block - 1, n - 1):
        top = _pass32(image, center, *scan.factors32(d), radius, 2.0**(-2 * e), rel, slack0,
                      (d + 8) * 2.0**-52, lower, upper, lower.view(np.int32),
                      np.empty(block, np.float32), block, n, 0)
        assert top == max(lower[block:].view(np.int32))
    assert np.isposinf(lower[:block]).all() and np.isposinf(upper[:block]).all()
    for i in range(block, n):
        exact = min(_exact_sq(X[i], X[c]) for c in (block - 1, n - 1))
        assert 0 <= Fraction(float(lower[i])) <= exact <= Fraction(float(upper[i]))
    assert lower[block] == 0.0


def _coordinate_sums(X, rows, scales, c):
    """float64 ||X[rows] * scales - c||^2, each row's sum in ``lane_sums``' order
    (element-wise NumPy: the kernels' bits)."""
    s = np.asarray(scales, dtype=np.float64)
    t = X[rows].astype(np.float64) * (s[:, None] if s.ndim else s) - np.asarray(c, np.float64)
    return lane_sum(t * t)


def _cells_case(metric):
    """Three cells of 23, 4 and 41 rows (group order over a shuffled pool of 100 x 7),
    the last with 6 seeds: groups and seed counts that are not multiples of four."""
    rng = np.random.default_rng(31)
    X = (3.0 * rng.normal(size=(6, 7)))[rng.integers(6, size=100)] + rng.normal(size=(100, 7))
    X = X.astype(np.float32)
    cosine = metric == "cosine"
    inv_norm = (1.0 / np.linalg.norm(X.astype(np.float64), axis=1) if cosine
                else np.empty(0))
    perm = rng.permutation(100)[:68].astype(np.int64)
    offsets = np.array([0, 23, 27, 68], dtype=np.int64)
    return X, cosine, inv_norm, perm, offsets


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_cell_seeds_and_lloyd_steps_match_a_coordinate_order_reference(metric):
    # seed_cells and lloyd_cells sum four rows (or centroids) at a time; the seeds, the
    # sub-group labels, counts and the rows nearest each centroid must be those of one
    # float64 coordinate-order sum at a time, the lowest index winning ties
    X, cosine, inv_norm, perm, offsets = _cells_case(metric)
    scale = inv_norm if cosine else np.ones(X.shape[0])
    rng = np.random.default_rng(5)
    key = rng.random(perm.shape[0])
    key[5] = key[9] = key.max()  # a tie for the first seed: the lower position
    max_seeds = np.array([3, 1, 6], dtype=np.int64)
    seed_offsets = np.concatenate([[0], np.cumsum(max_seeds)]).astype(np.int64)
    seed_pos = np.full(seed_offsets[-1], -1, dtype=np.int64)
    n_seeds = np.empty(3, dtype=np.int64)
    _kc_kernels.seed_cells(X, inv_norm, cosine, perm, key, offsets, max_seeds, seed_offsets,
                           0.5, seed_pos, n_seeds)
    want_pos, want_n = [], []
    for g in range(3):
        lo, hi = offsets[g], offsets[g + 1]
        rows = perm[lo:hi]
        seeds = [lo + int(np.argmax(key[lo:hi]))]
        near = np.full(hi - lo, np.inf)
        while max_seeds[g] > 1:
            i = perm[seeds[-1]]
            c = X[i].astype(np.float64) * scale[i]
            near = np.minimum(near, _coordinate_sums(X, rows, scale[rows], c))
            far = lo + int(np.argmax(near))
            if near.max() <= 0.25 or len(seeds) == max_seeds[g]:
                break
            seeds.append(far)
        want_pos += seeds + [-1] * (max_seeds[g] - len(seeds))
        want_n.append(len(seeds))
    np.testing.assert_array_equal(n_seeds, want_n)
    np.testing.assert_array_equal(seed_pos, want_pos)
    assert n_seeds[2] >= 5  # sub-groups of the last cell: not a multiple of four

    sub_offsets = np.concatenate([[0], np.cumsum(n_seeds)]).astype(np.int64)
    n_groups = int(sub_offsets[-1])
    start_perm = perm.copy()
    mindist = np.arange(perm.shape[0], dtype=np.float32)
    rep = np.empty(n_groups, dtype=np.int64)
    sub_counts = np.empty(n_groups, dtype=np.int64)
    sublabel = np.empty(perm.shape[0], dtype=np.int64)
    _kc_kernels.lloyd_cells(X, inv_norm, cosine, perm, mindist, offsets, seed_pos,
                            seed_offsets, sub_offsets, 2, np.empty((0, 7), np.int16),
                            np.empty((2, 0)), rep, sub_counts, sublabel)
    for g in range(3):
        lo, hi = offsets[g], offsets[g + 1]
        rows = start_perm[lo:hi]
        s = n_seeds[g]
        cent = [X[start_perm[seed_pos[seed_offsets[g] + q]]].astype(np.float64)
                * scale[start_perm[seed_pos[seed_offsets[g] + q]]] for q in range(s)]
        for it in range(3):
            dist = np.stack([_coordinate_sums(X, rows, scale[rows], c) for c in cent])
            label = np.argmin(dist, axis=0) if s > 1 else np.zeros(hi - lo, np.int64)
            if it == 2:
                break
            for q in range(s):
                if (label == q).any():
                    total = np.zeros(7)
                    for i in rows[label == q]:  # the kernel's order: rows in group order
                        total = total + X[i].astype(np.float64) * scale[i]
                    cent[q] = total * (1.0 / np.count_nonzero(label == q))
        counts = np.bincount(label, minlength=s)
        np.testing.assert_array_equal(sub_counts[sub_offsets[g]:sub_offsets[g + 1]], counts)
        order = np.argsort(label, kind="stable")
        np.testing.assert_array_equal(perm[lo:hi], rows[order])
        np.testing.assert_array_equal(mindist[lo:hi], np.arange(lo, hi)[order])
        for q in range(s):
            members = rows[label == q]
            if members.size:
                sq = _coordinate_sums(X, members, scale[members], cent[q])
                assert rep[sub_offsets[g] + q] == members[np.argmin(sq)]


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_group_row_distances_and_exact_mindist_match_a_coordinate_order_reference(metric):
    # centroid_distances sums four rows at a time and exact_mindist four centres at a time:
    # the same float64 bits as one coordinate-order sum at a time
    X, cosine, inv_norm, perm, offsets = _cells_case(metric)
    scale = inv_norm if cosine else np.ones(X.shape[0])
    rep = perm[[3, 23, 60]].copy()
    rowdist = np.empty(perm.shape[0], dtype=np.uint16)
    radius = np.empty(3)
    _kc_kernels.centroid_distances(X, inv_norm, cosine, perm, offsets,
                                   np.empty((0, 7), np.int16), np.empty((2, 0)), rep, rowdist,
                                   radius)
    for g in range(3):
        rows = perm[offsets[g]:offsets[g + 1]]
        dist = np.sqrt(_coordinate_sums(X, rows, scale[rows],
                                        X[rep[g]].astype(np.float64) * scale[rep[g]]))
        up = (np.maximum(dist, 2.0**-126) * (1.0 + 2.0**-22)).astype(np.float32)
        assert radius[g] == np.float64(up.max())
    L = np.random.default_rng(2).normal(size=(9, 7))
    lab_inv = 1.0 / np.linalg.norm(L, axis=1) if cosine else np.empty(0)
    lab_scale = lab_inv if cosine else np.ones(9)
    lab_rows = np.array([4, 0, 8, 2, 7, 1, 3], dtype=np.int64)  # seven: four and three
    picked = perm[:6].copy()
    for n_picked in (0, 5, 6):
        for i in perm[::7]:
            got = _kc_kernels.exact_mindist(X, inv_norm, _kc_kernels.metric_flag(cosine), i,
                                            L, lab_rows, lab_inv, picked, n_picked)
            x = X[i:i + 1]
            sq = [_coordinate_sums(x, [0], scale[i:i + 1], L[r] * lab_scale[r])[0]
                  for r in lab_rows]
            sq += [_coordinate_sums(x, [0], scale[i:i + 1],
                                    X[r].astype(np.float64) * scale[r])[0]
                   for r in picked[:n_picked]]
            want = 0.5 * min(sq) if cosine else np.sqrt(min(sq))
            assert got == want


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(d=st.integers(1, 60), scale=st.sampled_from([1e-30, 1e-21, 1e-3, 1.0, 1e4, 3e17, 1e30]),
       kind=st.sampled_from(["normal", "offset", "integers", "mixed"]), seed=st.integers(0, 99))
def test_first_pick_upper_bounds_cover_the_exact_distance(d, scale, kind, seed):
    # The lazy path without labels bounds every row's distance to the first pick of a
    # float32 l2 pool from a vectorised float32 sum (distance_to_row): each bound at least
    # the distance the exact keys are (the float64 coordinate-order sum, replayed here in
    # Python's float64, then its square root), and within 1e-4 of it unless the sums are
    # tiny; tiny, huge, offset, integer and mixed-magnitude rows, a row equal to the pick.
    from fastal._kernels import kcenter_lazy as kl

    X = _bracket_rows(d, scale, kind, seed).astype(np.float32)
    center = 3
    X[5] = X[center]
    upper = np.full(X.shape[0], np.nan, dtype=np.float32)
    kl.distance_to_row(X, np.empty(0), False, center, 1.0, upper)
    diff = X.astype(np.float64) - X[center].astype(np.float64)
    exact_sq = lane_sum(diff * diff)
    for i in range(X.shape[0]):
        sq = float(exact_sq[i])
        exact = np.sqrt(sq)
        assert float(upper[i]) >= exact
        if sq > 1e-30:
            assert float(upper[i]) <= exact * (1.0 + 1e-4)
