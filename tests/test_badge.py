"""BADGE (fastal.diversity.badge) against the explicit-gradient NumPy reference."""

import importlib

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastal._errors import FastalError
from fastal._kernels import badge as _k
from fastal.diversity.badge import _badge, badge

from tests import reference_badge as ref
from tests.conftest import random_probs
from tests.reference import lane_sum

# the module (``fastal.diversity.badge`` the attribute is the function)
driver = importlib.import_module("fastal.diversity.badge")


def make_pool(kind, n, d, c, dtype, seed):
    rng = np.random.default_rng(seed)
    if kind == "random":
        X = rng.standard_normal((n, d))
        probs = random_probs(rng, n, c, dtype=np.float64, concentration=0.5)
    elif kind == "clustered":
        centers = 5.0 * rng.standard_normal((6, d))
        labels = rng.integers(6, size=n)
        X = centers[labels] + 0.1 * rng.standard_normal((n, d))
        logits = 3.0 * np.eye(c)[labels % c] + rng.standard_normal((n, c))
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    elif kind == "duplicates":
        # few distinct (x, p) rows, many exact copies, plus one-hot rows (zero gradient)
        base_x = rng.standard_normal((5, d))
        base_p = random_probs(rng, 5, c, dtype=np.float64)
        base_p[0] = np.eye(c)[1]
        pick = rng.integers(5, size=n)
        X, probs = base_x[pick], base_p[pick]
    else:
        raise ValueError(kind)
    return X.astype(dtype), probs.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["random", "clustered", "duplicates"])
@pytest.mark.parametrize("with_labeled", [False, True])
def test_matches_explicit_reference(kind, dtype, with_labeled):
    n, d, c, k = 300, 7, 4, 50
    X, probs = make_pool(kind, n, d, c, dtype, seed=hash((kind, with_labeled)) % 1000)
    labeled = np.arange(0, n, 7) if with_labeled else None
    for seed in range(3):
        sel = badge(X, probs, k, labeled=labeled, seed=seed)
        indices, scores = ref.badge(X, probs, k, labeled=labeled, seed=seed)
        np.testing.assert_array_equal(sel.indices, indices)
        np.testing.assert_allclose(sel.scores, scores.astype(np.float32), rtol=1e-5,
                                   atol=1e-6 * max(1.0, float(scores[0])))
        assert len(set(sel.indices.tolist())) == k
        if labeled is not None:
            assert not np.isin(sel.indices, labeled).any()


def test_matches_reference_across_sampling_blocks():
    """More rows than one sampling block: the blockwise draw is the documented one."""
    X, probs = make_pool("random", 9000, 3, 3, np.float32, seed=5)
    labeled = np.arange(0, 9000, 11)
    sel = badge(X, probs, 30, labeled=labeled, seed=1)
    indices, _ = ref.badge(X, probs, 30, labeled=labeled, seed=1)
    np.testing.assert_array_equal(sel.indices, indices)


def test_thread_and_chunk_invariance():
    X, probs = make_pool("clustered", 20000, 16, 5, np.float32, seed=2)
    before = numba.get_num_threads()
    results = []
    try:
        for threads, chunk in [(1, None), (2, None), (2, 1), (2, 50000)]:
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            results.append(badge(X, probs, 40, seed=3, chunk_rows=chunk))
    finally:
        numba.set_num_threads(before)
    for other in results[1:]:
        np.testing.assert_array_equal(other.indices, results[0].indices)
        np.testing.assert_array_equal(other.scores, results[0].scores)


def test_sampling_rule_matches_reference_bitwise():
    rng = np.random.default_rng(0)
    d2 = rng.random(10000) * (rng.random(10000) < 0.3)
    block_sums = np.array([np.cumsum(d2[s:s + _k.SAMPLING_BLOCK])[-1]
                           for s in range(0, d2.size, _k.SAMPLING_BLOCK)])
    for u in list(rng.random(200)) + [0.0, 1.0 - 2.0**-53]:
        assert _k.sample_row(d2, block_sums, u) == ref.sample_row(d2, u)
    assert _k.sample_row(np.zeros(5), np.zeros(1), 0.5) == -1


def test_first_pick_is_largest_gradient_and_duplicates_have_zero_distance():
    X = np.array([[1.0, 0.0], [3.0, 0.0], [3.0, 0.0], [0.0, 1.0]])
    probs = np.array([[0.5, 0.5], [0.6, 0.4], [0.6, 0.4], [0.7, 0.3]])
    sel = badge(X, probs, 3, seed=0)
    assert sel.indices[0] == 1  # ||g||^2 = 0.32 * 9, ties (row 2) go to the lower row
    # row 2 duplicates row 1: its D^2 is exactly 0, so it is drawn only after rows 0 and 3
    assert sorted(sel.indices[1:].tolist()) == [0, 3]
    assert sel.extra["probability"][0] == 1.0 and sel.extra["n_uniform"] == 0
    assert badge(X, probs, 4, seed=0).indices[3] == 2


def test_all_zero_distances_fall_back_to_uniform_distinct_rows():
    X = np.ones((10, 3), dtype=np.float32)
    probs = np.tile(np.array([[0.2, 0.8]], dtype=np.float32), (10, 1))
    sel = badge(X, probs, 10, labeled=None, seed=4)
    assert sorted(sel.indices.tolist()) == list(range(10))
    assert sel.extra["n_uniform"] == 9
    indices, _ = ref.badge(X, probs, 10, seed=4)
    np.testing.assert_array_equal(sel.indices, indices)


def test_one_hot_probabilities_zero_gradients():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 4))
    probs = np.eye(3)[rng.integers(3, size=50)]
    probs[7] = [0.3, 0.3, 0.4]
    sel = badge(X, probs, 5, seed=0)
    assert sel.indices[0] == 7
    assert len(set(sel.indices.tolist())) == 5
    np.testing.assert_array_equal(sel.indices, ref.badge(X, probs, 5, seed=0)[0])


def test_probabilities_are_consistent_with_scores():
    X, probs = make_pool("random", 200, 5, 3, np.float64, seed=9)
    sel = badge(X, probs, 10, seed=0)
    assert sel.method == "badge" and sel.n_pool == 200
    assert sel.indices.dtype == np.int64 and sel.scores.dtype == np.float32
    p = sel.extra["probability"]
    assert p[0] == 1.0 and np.all((p[1:] > 0) & (p[1:] <= 1))


def test_boolean_mask_equals_positions():
    X, probs = make_pool("random", 100, 4, 3, np.float32, seed=3)
    mask = np.zeros(100, dtype=bool)
    mask[[3, 50, 77]] = True
    a = badge(X, probs, 8, labeled=mask, seed=2)
    b = badge(X, probs, 8, labeled=[77, 3, 50, 3], seed=2)
    np.testing.assert_array_equal(a.indices, b.indices)


def test_k_equals_unlabeled_returns_every_row():
    X, probs = make_pool("duplicates", 40, 3, 3, np.float32, seed=1)
    sel = badge(X, probs, 30, labeled=np.arange(10), seed=0)
    assert sorted(sel.indices.tolist()) == list(range(10, 40))


@pytest.mark.parametrize("args, kwargs, match", [
    ((np.zeros(5), np.full((5, 2), 0.5), 1), {}, "X must be 2-D"),
    ((np.zeros((5, 2)), np.full((4, 2), 0.5), 1), {}, "one row per pool row"),
    ((np.zeros((5, 2)), np.full(5, 0.5), 1), {}, "probs must be 2-D"),
    ((np.zeros((5, 2)), np.full((5, 2), 0.5), 0), {}, "k must be >= 1"),
    ((np.zeros((5, 2)), np.full((5, 2), 0.5), 6), {}, "unlabeled pool rows"),
    ((np.zeros((5, 2)), np.full((5, 2), 0.5), 4), {"labeled": [0, 1]}, "unlabeled pool rows"),
    ((np.zeros((5, 2)), np.full((5, 2), 0.5), 2.0), {}, "k must be a positive integer"),
    ((np.zeros((5, 2)), np.full((5, 2), 0.5), 1), {"labeled": [5]}, r"in \[0, 5\)"),
    ((np.zeros((5, 2)), np.full((5, 2), 0.5), 1), {"labeled": [-1]}, r"in \[0, 5\)"),
    ((np.zeros((5, 2)), np.full((5, 2), 0.5), 1), {"labeled": [True]}, "length 5"),
    ((np.zeros((5, 2)), np.full((5, 2), 0.5), 1), {"labeled": [0.5]}, "integer"),
    ((np.zeros((5, 2)), np.full((5, 2), 0.5), 1), {"labeled": np.arange(5)}, "nothing left"),
    ((np.zeros((5, 2)), np.full((5, 2), 0.5), 1), {"chunk_rows": 0}, "chunk_rows"),
    ((np.zeros((0, 2)), np.zeros((0, 2)), 1), {}, "at least one row"),
    ((np.array([["a"]]), np.ones((1, 1)), 1), {}, "real numeric"),
    ((np.zeros((5, 2)), np.full((5, 2), 0.7), 1), {}, "probs row 0 is not a probability"),
    ((np.zeros((5, 2)), np.array([[1.5, -0.5]] * 5), 1), {}, "probs row 0"),
])
def test_bad_input(args, kwargs, match):
    with pytest.raises(FastalError, match=match):
        badge(*args, **kwargs)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input(bad):
    X = np.ones((6, 3), dtype=np.float32)
    probs = np.full((6, 2), 0.5, dtype=np.float32)
    X[4, 1] = bad
    with pytest.raises(FastalError, match="X must be finite; row 4"):
        badge(X, probs, 2)
    X[4, 1] = 1.0
    probs[2, 0] = bad
    with pytest.raises(FastalError, match="probs row 2"):
        badge(X, probs, 2)


@pytest.mark.parametrize("rows_per_task", [1, 3, 4096])
@pytest.mark.parametrize("n", [1, 2, 5, 8, 103])
def test_row_stats_match_the_defined_sums(n, rows_per_task, monkeypatch):
    """``row_stats``: squared norms, each the float64 sum in ``lane_sums``' order
    (``reference.lane_sum``), bit for bit, whatever the tasks; the class, ``|p~|^2`` (class
    order) and the bad-row codes per row. Values over many orders of magnitude, so that any
    other order rounds differently."""
    monkeypatch.setattr(_k, "ROWS_PER_TASK", rows_per_task)
    rng = np.random.default_rng(n)
    X = (rng.standard_normal((n, 77)) * np.exp(rng.uniform(-20, 20, (n, 77)))).astype(np.float32)
    probs = random_probs(rng, n, 4, dtype=np.float32)
    if n > 4:
        X[3, 5] = np.nan
        probs[4] = [0.5, 0.5, 0.5, 0.0]
    yhat, pnorm2, xnorm2 = np.empty(n, np.int32), np.empty(n), np.empty(n)
    bad = np.full(n, 9, np.uint8)
    n_bad = _k.row_stats(X, probs, 1e-3, yhat, pnorm2, xnorm2, bad)
    np.testing.assert_array_equal(xnorm2, lane_sum(X.astype(np.float64) ** 2))
    np.testing.assert_array_equal(yhat, probs.argmax(axis=1))
    P = probs.astype(np.float64)
    P[np.arange(n), yhat] -= 1.0
    q = np.zeros(n)
    for j in range(P.shape[1]):
        q = q + P[:, j] ** 2
    np.testing.assert_array_equal(pnorm2, q)
    expected = np.zeros(n, np.uint8)
    if n > 4:
        expected[3], expected[4] = 1, 2
    np.testing.assert_array_equal(bad, expected)
    assert n_bad == int((expected > 0).sum())


def test_kernel_block_sums_are_left_to_right():
    """The block sums must be the sequential sums the reference uses (no reassociation,
    even after the fastmath add_center was compiled in the same process)."""
    X, probs = make_pool("random", 3 * _k.SAMPLING_BLOCK + 123, 6, 4, np.float32, seed=8)
    n = X.shape[0]
    yhat = np.empty(n, dtype=np.int32)
    pnorm2, xnorm2 = np.empty(n), np.empty(n)
    assert _k.row_stats(X, probs, 1e-3, yhat, pnorm2, xnorm2, np.empty(n, np.uint8)) == 0
    mindist = np.full(n, np.inf)
    block_sums = np.empty(4)
    for center in (5, 1000, 9000):
        _k.add_center(X, probs, yhat, pnorm2, xnorm2, center, mindist, 1)
        _k.block_sums(mindist, block_sums)
        expected = [np.cumsum(mindist[s:s + _k.SAMPLING_BLOCK])[-1]
                    for s in range(0, n, _k.SAMPLING_BLOCK)]
        assert block_sums.tolist() == expected
        assert mindist[center] == 0.0


@pytest.mark.parametrize("serial", [0, 16])
@pytest.mark.parametrize("n_blocks", [1, 3.5, 4, 9.25, 40.5])
def test_block_sums_four_at_a_time_are_left_to_right(n_blocks, serial, monkeypatch):
    """Four blocks at a time (four chains), on the calling thread or in tasks of four
    blocks: every block sum is still its own left-to-right sum, bit for bit. Values over
    many orders of magnitude, so that any other order rounds differently."""
    monkeypatch.setattr(_k, "SERIAL_BLOCKS", serial)
    rng = np.random.default_rng(int(4 * n_blocks) + serial)
    n = int(n_blocks * _k.SAMPLING_BLOCK)
    mindist = np.exp(rng.uniform(-30, 30, size=n)) * (rng.random(n) < 0.9)
    out = np.full(-(-n // _k.SAMPLING_BLOCK), np.nan)
    _k.block_sums(mindist, out)
    expected = [np.cumsum(mindist[s:s + _k.SAMPLING_BLOCK])[-1]
                for s in range(0, n, _k.SAMPLING_BLOCK)]
    assert out.tolist() == expected


def _stepwise(X, probs, k, labeled, seed):
    """BADGE's picks one Python step at a time: ``add_center``, ``block_sums``, a fresh
    ``rng.random()`` and ``sample_row`` (else the uniform rule) per pick, as the driver ran
    them before ``picks`` moved the loop into one gang of threads."""
    n = X.shape[0]
    yhat, pnorm2, xnorm2 = np.empty(n, np.int32), np.empty(n), np.empty(n)
    assert _k.row_stats(X, probs, 1e-3, yhat, pnorm2, xnorm2, np.empty(n, np.uint8)) == 0
    status = np.full(n, _k.CANDIDATE, np.uint8)
    mindist = np.full(n, np.inf)
    status[labeled] = _k.LABELED
    mindist[labeled] = 0.0
    n_unlabeled = n - len(labeled)
    sums = np.empty(-(-n // _k.SAMPLING_BLOCK))
    rng = np.random.default_rng(seed)
    gnorm2 = np.where(status == _k.CANDIDATE, pnorm2 * xnorm2, -1.0)
    row = int(np.argmax(gnorm2))
    out = [(row, gnorm2[row], 1.0)]
    status[row] = _k.PICKED
    for t in range(1, k):
        _k.add_center(X, probs, yhat, pnorm2, xnorm2, row, mindist, 1)
        _k.block_sums(mindist, sums)
        total = 0.0
        for v in sums.tolist():
            total += v
        u = rng.random()
        row = int(_k.sample_row(mindist, sums, u))
        if row >= 0:
            out.append((row, mindist[row], mindist[row] / total))
        else:
            remaining = n_unlabeled - t
            row = int(_k.nth_candidate(status, min(int(u * remaining), remaining - 1)))
            out.append((row, 0.0, 1.0 / remaining))
        status[row] = _k.PICKED
    return out


@pytest.mark.parametrize("gang", [True, False])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("kind, n, work, dense", [
    ("clustered", 3 * _k.SAMPLING_BLOCK + 77, 1, 0.6),  # one pick per gang call
    ("random", 2 * _k.SAMPLING_BLOCK + 1500, 1 << 27, 0.6),
    ("random", 2 * _k.SAMPLING_BLOCK + 1500, 1 << 27, 0.0),  # the filter's dense sweeps
    ("duplicates", 5000, 1 << 16, 0.6),  # the uniform fallback inside the gang
    ("random", 700, 1 << 27, 0.6),  # fewer rows than one piece: one thread
])
def test_gang_picks_equal_the_stepwise_loop(kind, n, work, dense, threads, gang, monkeypatch):
    """``picks`` (every later pick in one gang of threads meeting at barriers, several calls
    when ``PICKS_WORK`` is small) and the driver's step-by-step picks of cold processes
    give this step-by-step loop's picks, scores and probabilities bit for bit, uniform
    picks included; the gang with every piece's dots swept densely too (``DENSE_SHARE``
    0; the step-by-step paths gather them)."""
    monkeypatch.setattr(_k, "PICKS_WORK", work)
    monkeypatch.setattr(_k, "DENSE_SHARE", dense)
    X, probs = make_pool(kind, n, 9, 3, np.float32, seed=n)
    labeled = np.arange(0, n, 13)
    k = 60
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        sel = _badge(X, probs, k, labeled=labeled, seed=4, gang=gang)
    finally:
        numba.set_num_threads(before)
    expected = _stepwise(X, probs, k, labeled, seed=4)
    assert sel.indices.tolist() == [r for r, _, _ in expected]
    assert sel.scores.tolist() == np.array([s for _, s, _ in expected], np.float32).tolist()
    assert sel.extra["probability"].tolist() == [p for _, _, p in expected]
    if kind == "duplicates":
        assert sel.extra["n_uniform"] > 0


def test_cold_processes_pick_step_by_step_until_the_gang_pays(monkeypatch):
    """Without the gang kernel compiled (or cached), picks go step by step until
    ``_COLD_PICKS`` have been made so in the process; then, and whenever it is compiled,
    through the gang. The same picks either way."""
    calls = []
    real_picks = _k.picks
    monkeypatch.setattr(_k, "picks", lambda *a: calls.append("gang") or real_picks(*a))
    monkeypatch.setattr(driver, "_COLD_PICKS", 25)
    monkeypatch.setattr(driver, "_cold_picks", [0])
    ready = [False]
    monkeypatch.setattr(driver, "compiled", lambda kernel, dtype: ready[0])
    X, probs = make_pool("clustered", 2000, 5, 3, np.float32, seed=3)
    first = badge(X, probs, 10)
    assert calls == [] and driver._cold_picks == [10]
    assert badge(X, probs, 10).indices.tolist() == first.indices.tolist()
    assert calls == [] and driver._cold_picks == [20]
    assert badge(X, probs, 10).indices.tolist() == first.indices.tolist()  # 30 > 25
    assert calls == ["gang"] and driver._cold_picks == [20]
    driver._cold_picks[0] = 0
    ready[0] = True
    badge(X, probs, 3)
    assert calls == ["gang", "gang"]
    badge(X, probs, 1)  # one pick: no later picks to make
    assert calls == ["gang", "gang"] and driver._cold_picks == [0]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), d=st.integers(1, 5), c=st.integers(1, 4),
       seed=st.integers(0, 2**32 - 1), distinct=st.integers(1, 8), data=st.data())
def test_property_matches_reference(n, d, c, seed, distinct, data):
    """Random small pools with few distinct (integer-valued) rows: many ties and duplicates."""
    rng = np.random.default_rng(seed)
    base_x = rng.integers(-2, 3, size=(distinct, d)).astype(np.float64)
    base_p = rng.dirichlet(np.ones(c), size=distinct)
    base_p[rng.random(distinct) < 0.3] = np.eye(c)[0]  # one-hot rows: zero gradients
    which = rng.integers(distinct, size=n)
    X, probs = base_x[which], base_p[which]
    n_labeled = data.draw(st.integers(0, n - 1))
    labeled = rng.choice(n, n_labeled, replace=False)
    k = data.draw(st.integers(1, n - n_labeled))
    sel = badge(X, probs, k, labeled=labeled, seed=seed)
    indices, _ = ref.badge(X, probs, k, labeled=labeled, seed=seed)
    np.testing.assert_array_equal(sel.indices, indices)
    assert len(set(sel.indices.tolist())) == k
    assert not np.isin(sel.indices, labeled).any()


def _row_state(X, probs):
    n = X.shape[0]
    yhat = np.empty(n, dtype=np.int32)
    pnorm2, xnorm2 = np.empty(n), np.empty(n)
    assert _k.row_stats(X, probs, 1e-3, yhat, pnorm2, xnorm2, np.empty(n, np.uint8)) == 0
    return yhat, pnorm2, xnorm2


def _defined_order_distances(X, probs, yhat, pnorm2, xnorm2, center):
    """Every row's squared gradient distance to ``center`` by the implicit formula, in
    float64, the O(C) sums in class order and the O(d) sums in ``lane_sums``' order
    (``reference.lane_sum``): what ``add_center`` must store."""
    n = X.shape[0]
    P = probs.astype(np.float64)
    P[np.arange(n), yhat] -= 1.0
    X64 = X.astype(np.float64)
    pc, xc = P[center], X64[center]
    dp2 = pdp = np.zeros(n)
    for j in range(P.shape[1]):
        diff = P[:, j] - pc[j]
        dp2, pdp = dp2 + diff * diff, pdp + P[:, j] * diff
    diff = X64 - xc
    dx2, dxc = lane_sum(diff * diff), lane_sum(diff * xc)
    dist = np.maximum(pnorm2 * dx2 + dp2 * xnorm2[center] + 2.0 * pdp * dxc, 0.0)
    g = pnorm2 * xnorm2
    flat = (g == 0.0) | (g[center] == 0.0)
    dist[flat] = g[flat] + g[center]
    return dist


@pytest.mark.parametrize("dense", [None, 0.0, 0.6])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [7, 77])
def test_kernel_distances_match_the_defined_order(d, dtype, dense):
    """``add_center``: every row's distance must be the implicit formula with each sum in
    its defined order (``_defined_order_distances``), bit for bit, pruned or not; the
    filter's dots gathered (``dense`` None), swept densely (0) or either by piece."""
    X, probs = make_pool("random", _k.SAMPLING_BLOCK + 301, d, 4, dtype, seed=12)
    X[17] = X[3]  # a duplicate row: distance 0 to centre 3
    probs[17] = probs[3]
    n = X.shape[0]
    yhat, pnorm2, xnorm2 = _row_state(X, probs)
    mindist = np.full(n, np.inf)
    want = mindist.copy()
    for center in (3, 1000, 5, n - 1):
        _k.add_center(X, probs, yhat, pnorm2, xnorm2, center, mindist, 1, dense)
        dist = _defined_order_distances(X, probs, yhat, pnorm2, xnorm2, center)
        want = np.where(want == 0.0, 0.0, np.minimum(want, dist))
        want[center] = 0.0
        np.testing.assert_array_equal(mindist, want)
    assert mindist[17] == 0.0


@pytest.mark.parametrize("dense", [None, 0.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [3, 64, 300])
def test_filter_never_skips_a_row_its_centre_lowers(dtype, d, dense):
    """Rows whose current distance is just above (or at, or just below) their exact
    distance to the new centre, by 1e-13 to 1e-3 of it: the vectorised filter and the
    Cauchy-Schwarz test may skip only rows the exact pass would leave, so every row ends at
    min(current, exact), bit for bit. Near-duplicate rows (|x_i - x_c| tiny against |x|),
    confident rows (p~ tiny) and rows whose <p~_i, dp> <dx, x_c> term cancels most of the
    others, and near-duplicate gradients, included; the filter's dots gathered row by row
    (``dense`` None) or swept densely over each piece (0)."""
    rng = np.random.default_rng(d)
    n = 3000
    X = rng.standard_normal((n, d)) * np.exp(rng.uniform(-3, 3, size=(n, 1)))
    probs = random_probs(rng, n, 5, dtype=np.float64, concentration=0.3)
    center = 7
    X[100:400] = X[center] + 1e-4 * rng.standard_normal((300, d)) * np.abs(X[center])
    probs[400:600] = np.eye(5)[rng.integers(5, size=200)] * (1 - 1e-6) + 2e-7
    X[600:900] = -0.5 * X[center] + 0.01 * rng.standard_normal((300, d))
    probs[600:900] = probs[center] + 0.01 * random_probs(rng, 300, 5, dtype=np.float64)
    probs[600:900] /= probs[600:900].sum(axis=1, keepdims=True)
    # near-duplicate gradients: the distance a millionth of |g|^2, the terms of
    # |g_i|^2 + |g_c|^2 - 2 <p~_i, p~_c> <x_i, x_c> cancel to within float32 rounding
    scale = 10.0 ** rng.uniform(-4, -2, size=(300, 1))
    X[900:1200] = X[center] * (1.0 + scale * rng.standard_normal((300, d)))
    probs[900:1200] = (1.0 - scale) * probs[center] + scale * random_probs(
        rng, 300, 5, dtype=np.float64)
    X, probs = X.astype(dtype), probs.astype(dtype)
    yhat, pnorm2, xnorm2 = _row_state(X, probs)
    exact = _defined_order_distances(X, probs, yhat, pnorm2, xnorm2, center)
    step = 10.0 ** rng.uniform(-13, -3, size=n) * rng.choice([-1.0, 0.0, 1.0, 1.0], size=n)
    current = exact * (1.0 + step)
    current[current <= 0.0] = np.inf
    for blocks_per_task in (1, 100):
        mindist = current.copy()
        _k.add_center(X, probs, yhat, pnorm2, xnorm2, center, mindist, blocks_per_task,
                      dense)
        want = np.minimum(current, exact)
        want[center] = 0.0
        np.testing.assert_array_equal(mindist, want)
        lowered = int(np.sum(want < current))
        assert lowered > n // 3  # most rows with current above exact are lowered


@pytest.mark.parametrize("d", [2, 50, 784])
def test_filter_bound_covers_the_worst_rounding(d):
    """``_cleared`` against its own error model, at the model's worst case: <x_i, x_c> off by
    the whole ``g |x_i| |x_c|`` that a float32 sum of d products may be off by (``rel`` is
    2 g), in the direction that raises the distance, and <p~_i, p~_c> off by half its
    claimed bound the same way. A row whose exact distance is below its current one must
    never be cleared; rows whose current distance is well below theirs must be (the test is
    not vacuous)."""
    rng = np.random.default_rng(d)
    n = 20000
    rel, slack = _k.bounds32(d)
    u = 2.0**-24  # float32's unit roundoff: a sum of d products is within g of exact
    g = (d + 2) * u / (1.0 - (d + 2) * u)
    pn, pc2 = rng.uniform(1e-6, 2.0, n), rng.uniform(1e-6, 2.0, n)
    xn, xc2 = 10.0 ** rng.uniform(-6, 6, n), 10.0 ** rng.uniform(-6, 6, n)
    # near-duplicate gradients (cosines near 1) as well as any angle
    cos_x = np.where(rng.random(n) < 0.5, 1.0 - 10.0 ** rng.uniform(-12, -1, n),
                     rng.uniform(-1, 1, n))
    cos_p = np.where(rng.random(n) < 0.5, 1.0 - 10.0 ** rng.uniform(-12, -1, n),
                     rng.uniform(-1, 1, n))
    s = cos_x * np.sqrt(xn * xc2)
    pp = cos_p * np.sqrt(pn * pc2)
    dist = pn * xn + pc2 * xc2 - 2.0 * pp * s
    pp_err = (5 + 4) * 2.0**-24 * np.sqrt(pc2)  # the kernel's, at c = 5
    pp_e = pp_err * (pn + 5.0)
    dot = s - np.sign(pp) * g * np.sqrt(xn * xc2)
    pp_seen = pp + np.sign(s) * pp_e / 2.0
    cleared = np.array([_k._cleared(dot[i], pn[i], xn[i], pp_seen[i], pp_e[i], cur, pc2[i],
                                    xc2[i], rel, slack)
                        for i in range(n) for cur in [dist[i] * (1.0 + 1e-12) + 1e-300]])
    assert not cleared[dist > 0.0].any()
    far = np.array([_k._cleared(dot[i], pn[i], xn[i], pp_seen[i], pp_e[i], dist[i] * 0.5,
                                pc2[i], xc2[i], rel, slack) for i in range(n)])
    assert far.mean() > 0.5
