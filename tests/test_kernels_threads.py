"""The diversity kernels run as serial tasks on Python threads (``_kernels._parallel``):
every call of every entry point must leave the same bits with 1 thread, with 2, and with
tiny tasks (many thread splits), whatever range of tasks each thread gets.

Each entry point's ``run_tasks`` is wrapped to record, after every call, its return value
and a digest of every array it was given (inputs and outputs; scalars are left out, since
one of them is the task size), so a difference anywhere in the intermediate state fails, not
only one that changes the final picks. The drivers' ``np.empty`` buffers are zeroed for
the comparison: parts of them are never written (picks not made yet, unused seed slots).
"""

import hashlib
import os
import threading
import warnings
import importlib

import numba
import numpy as np
import pytest

from fastal._kernels import _parallel
from fastal._kernels import badge as _kb
from fastal._kernels import farthest as _kf
from fastal._kernels import kcenter as _kc
from fastal._kernels import kcenter_lazy as _kl
from fastal._kernels import kcenter_scan as _ks
from fastal.diversity.badge import _badge, badge
from fastal.diversity.kcenter import _kcenter

from tests.conftest import random_probs

_MODULES = (_kb, _kc, _kl, _ks, _kf)
# the module (``fastal.diversity.kcenter`` the attribute is the function)
kcenter_driver = importlib.import_module("fastal.diversity.kcenter")


def _digest(array):
    data = np.ascontiguousarray(array)
    return data.dtype.str, data.shape, hashlib.sha1(data.view(np.uint8)).hexdigest()


def _recorded(run, monkeypatch, n_threads, tiny):
    """``run()`` with ``n_threads`` Numba threads, every task size 1 when ``tiny``; returns
    (the result, the log of kernel calls)."""
    log = []

    def recording_run_tasks(kernel, n_tasks, *args, scratch=None):
        total = _parallel.run_tasks(kernel, n_tasks, *args, scratch=scratch)
        log.append((kernel.py_func.__name__, int(total),
                    [_digest(a) for a in args if isinstance(a, np.ndarray)]))
        return total

    def recording_run_gang(kernel, n_threads, *args, scratch=None):
        total = _parallel.run_gang(kernel, n_threads, *args, scratch=scratch)
        # the barrier's counter (8 int64) counts arrivals: it depends on the thread count
        log.append((kernel.py_func.__name__, int(total),
                    [_digest(a) for a in args if isinstance(a, np.ndarray)
                     and not (a.dtype == np.int64 and a.shape == (8,))]))
        return total

    empty = np.empty

    def zeroed_empty(*args, **kwargs):
        out = empty(*args, **kwargs)
        out[...] = 0
        return out

    with monkeypatch.context() as patch:
        patch.setattr(np, "empty", zeroed_empty)
        for module in _MODULES:
            patch.setattr(module, "run_tasks", recording_run_tasks)
            if hasattr(module, "run_gang"):
                patch.setattr(module, "run_gang", recording_run_gang)
        patch.setattr(_kb, "SERIAL_BLOCKS", 0)  # the block sums' tasks, as on large pools
        if tiny:
            patch.setattr(_kb, "ROWS_PER_TASK", 1)
            patch.setattr(_kc, "ROWS_PER_TASK", 1)
            patch.setattr(_kc, "GROUP_COORDS_PER_TASK", 1)
            patch.setattr(_kl, "ROWS_PER_TASK", 1)
            patch.setattr(_ks, "ROWS_PER_TASK", 1)
        before = numba.get_num_threads()
        numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
        try:
            result = run()
        finally:
            numba.set_num_threads(before)
    return result, log


def _assert_thread_invariant(run, monkeypatch, kernels):
    """The same calls, returns and arrays with 1 thread, 2 threads and 2 threads on tiny
    tasks; ``kernels`` must all have been called (so the test cannot pass vacuously)."""
    run()  # compile first: Numba cannot type a kernel while np.empty is the Python wrapper
    results = [_recorded(run, monkeypatch, n, tiny)
               for n, tiny in [(1, False), (2, False), (2, True)]]
    first, log = results[0]
    called = {name for name, _, _ in log}
    assert set(kernels) <= called, f"not exercised: {set(kernels) - called}"
    for result, other_log in results[1:]:
        assert [entry[0] for entry in other_log] == [entry[0] for entry in log]
        for a, b in zip(log, other_log):
            assert a == b, f"{a[0]} differs"
        for name in ("indices", "scores"):
            np.testing.assert_array_equal(getattr(result, name), getattr(first, name))
        if "covering_radius" in getattr(first, "extra", {}):
            np.testing.assert_array_equal(result.extra["covering_radius"],
                                          first.extra["covering_radius"])


def _blobs(rng, n, d, n_centres, spread):
    centres = 3.0 * rng.normal(size=(n_centres, d))
    return (centres[rng.integers(n_centres, size=n)]
            + spread * rng.normal(size=(n, d))).astype(np.float32)


@pytest.mark.parametrize("gang", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_badge_kernels(dtype, gang, monkeypatch):
    rng = np.random.default_rng(0)
    n = 3 * _kb.SAMPLING_BLOCK + 77  # several sampling blocks, a partial last one
    X = rng.normal(size=(n, 6)).astype(dtype)
    probs = random_probs(rng, n, 4, dtype=dtype, concentration=0.5)
    labeled = rng.choice(n, 40, replace=False)
    _assert_thread_invariant(
        lambda: _badge(X, probs, 25, labeled=labeled, seed=1, chunk_rows=_kb.SAMPLING_BLOCK,
                       gang=gang),
        monkeypatch, ["_row_stats_tasks"] + (["_picks_tasks"] if gang else
                                             ["_add_center_tasks", "_block_sums_tasks"]))


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("n_labeled", [0, 20, 300])
@pytest.mark.parametrize("weighted", [False, True])
def test_lazy_kcenter_kernels(metric, n_labeled, weighted, monkeypatch):
    # a band that starts small and is widened after picks (rows_picked_mindist up to
    # _LAZY_SCAN_LABELED picks, then the labeled-set kernels on the picks); weighted, the
    # radii's band too
    monkeypatch.setattr(kcenter_driver, "_LAZY_BAND_MIN", 64)
    monkeypatch.setattr(kcenter_driver, "_LAZY_BAND_PER_PICK", 0)
    monkeypatch.setattr(kcenter_driver, "_LAZY_BAND_YIELD", 0.0)
    rng = np.random.default_rng(n_labeled)
    X = rng.normal(size=(3000, 12)).astype(np.float32)
    labeled = rng.choice(3000, n_labeled, replace=False) if n_labeled else None
    first = "_upper_to_row32_tasks" if metric == "l2" else "_distance_to_row_tasks"
    expected = {0: [first, "_rows_picked_mindist_tasks"],
                20: ["_probe_upper_tasks", "_rows_labeled_exact_tasks",
                     "_rows_picked_mindist_tasks"],
                300: ["_assign_lists_tasks", "_probe_upper_tasks", "_rows_labeled_mindist_tasks",
                      "_rows_picked_mindist_tasks"]}[n_labeled]
    weights = rng.random(3000) if weighted else None
    _assert_thread_invariant(
        lambda: _kcenter(X, 100, labeled=labeled, metric=metric, path="lazy", weights=weights),
        monkeypatch, expected)


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("weighted", [False, True])
def test_scan_kcenter_kernels(metric, weighted, monkeypatch):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, 12)).astype(np.float32)
    X[2000:2100] = X[:100]  # duplicates: ties between tasks go to the lowest row
    weights = None
    if weighted:  # integer weights: score ties between tasks too
        weights = rng.integers(1, 4, size=3000).astype(np.float64)
        weights[2000:2100] = weights[:100]
    # (its per-task maxima are sized by the task count, so the results are compared, not
    # the kernel's arguments)
    # The float32 scans (l2): one gang of threads meeting at barriers, each owning at least
    # MIN_ROWS_PER_THREAD rows, in blocks of BLOCK32 rows.
    results = []
    for n_threads, rows_per_task, min_rows, block in [
            (1, _ks.ROWS_PER_TASK, _ks.MIN_ROWS_PER_THREAD, _ks.BLOCK32),
            (2, _ks.ROWS_PER_TASK, 1000, _ks.BLOCK32), (2, 1, 1, 1), (2, 7, 7, 5)]:
        with monkeypatch.context() as patch:
            patch.setattr(_ks, "ROWS_PER_TASK", rows_per_task)
            patch.setattr(_ks, "MIN_ROWS_PER_THREAD", min_rows)
            patch.setattr(_ks, "BLOCK32", block)
            before = numba.get_num_threads()
            numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
            try:
                stats = {}
                results.append(_kcenter(X, 150, metric=metric, path="scan", stats=stats,
                                        weights=weights))
            finally:
                numba.set_num_threads(before)
        assert stats["path"] == "scan" and stats["precision"] == "float32"
    for other in results[1:]:
        for name in ("indices", "scores"):
            np.testing.assert_array_equal(getattr(other, name), getattr(results[0], name))
        np.testing.assert_array_equal(other.extra["covering_radius"],
                                      results[0].extra["covering_radius"])


@pytest.mark.parametrize("grouping", ["labeled", "labeled-cells", "cells"])
@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("weighted", [False, True])
def test_grouped_kcenter_kernels(grouping, metric, weighted, monkeypatch):
    rng = np.random.default_rng(7)
    X = _blobs(rng, 3000, 8, 25, spread=0.3)
    labeled = None if grouping == "cells" else rng.choice(3000, 40, replace=False)
    weights = rng.uniform(0.5, 2.0, size=3000) if weighted else None
    expected = ["_centre_distances_tasks", "_update_groups_tasks"]
    if grouping != "cells":
        expected += ["_labeled_mindist_tasks", "_rowdist_from_mindist_tasks",
                     "_group_stats_tasks"]
    if grouping != "labeled-cells":
        expected += ["_seed_cells_tasks", "_lloyd_cells_tasks", "_centroid_distances_tasks"]
    _assert_thread_invariant(
        lambda: _kcenter(X, 80, labeled=labeled, metric=metric, weights=weights,
                         grouping=grouping, path="grouped"),
        monkeypatch, expected)


@pytest.mark.parametrize("cosine", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_farthest_kernel(cosine, weighted, monkeypatch):
    rng = np.random.default_rng(3)
    n = 3 * _kf.BLOCK + 5  # several blocks
    # integer-valued rows: ties between blocks, which must go to the lower row
    X = rng.integers(-2, 3, size=(n, 5)).astype(np.float32)
    X[X.sum(axis=1) == 0, 0] = 1.0  # no zero rows (cosine)
    inv_norm = 1.0 / np.sqrt((X.astype(np.float64) ** 2).sum(axis=1)) if cosine else np.empty(0)
    weights = rng.integers(1, 3, size=n).astype(np.float64) if weighted else np.empty(0)

    class Picks:
        pass

    def run():
        mindist = np.full(n, np.inf)
        mindist[[4, 9000]] = -1.0  # centres already
        best = np.empty(3)
        picks = []
        centres = np.zeros((0, 5))
        for _ in range(6):
            _kf.add_centers(X, inv_norm, cosine, centres, mindist, weights, weighted, best)
            picks.append(best.copy())
            row = int(best[1])
            mindist[row] = -1.0
            centres = X[row:row + 1].astype(np.float64)
            if cosine:
                centres *= inv_norm[row]
        out = Picks()
        out.indices = np.array(picks)[:, 1]
        out.scores = np.array(picks)
        return out

    _assert_thread_invariant(run, monkeypatch, ["_add_centers_tasks"])


def test_run_tasks_scratch_is_per_thread_range_and_reused_by_the_calling_thread():
    # a Python "kernel": records which scratch arrays each thread range was given
    seen = []

    def kernel(value, buffer, lo, hi):
        seen.append((lo, hi, id(buffer)))
        buffer[:] = lo
        return value * (hi - lo)

    made = []

    def make():
        made.append(1)
        return (np.zeros(4),)

    before = numba.get_num_threads()
    threads = min(2, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(threads)
    try:
        assert _parallel.run_tasks(kernel, 10, 3, scratch=(("test", 4), make)) == 30
        first = sorted(seen)
        assert len(first) == threads and len(made) == threads
        assert len({buffer for _, _, buffer in first}) == threads  # one set per range
        seen.clear()
        _parallel.run_tasks(kernel, 10, 3, scratch=(("test", 4), make))
        assert sorted(seen) == first and len(made) == threads  # reused, nothing made
        _parallel.run_tasks(kernel, 10, 3, scratch=(("test", 5), make))
        assert len(made) == 2 * threads  # another key: new arrays
        # another calling thread gets arrays of its own
        seen.clear()
        worker = threading.Thread(target=_parallel.run_tasks, args=(kernel, 10, 3),
                                  kwargs={"scratch": (("test", 4), make)})
        worker.start()
        worker.join()
        assert not {b for _, _, b in seen} & {b for _, _, b in first}
        # without scratch the kernel gets only the arguments and its range
        assert _parallel.run_tasks(lambda value, lo, hi: value * (hi - lo), 10, 2) == 20
        # past _SCRATCH_BYTES a thread's kept sets are dropped (then made again)
        limit = _parallel._SCRATCH_BYTES
        _parallel._SCRATCH_BYTES = 32 * threads  # one set of 32 bytes per range fits
        try:
            _parallel.run_tasks(kernel, 10, 3, scratch=(("test", 6), make))
            assert set(key for key, _ in _parallel._local.scratch) == {("test", 6)}
            # a set larger than the limit alone is made for the call and never kept
            _parallel._SCRATCH_BYTES = 31
            made.clear()
            _parallel.run_tasks(kernel, 10, 3, scratch=(("test", 7), make))
            _parallel.run_tasks(kernel, 10, 3, scratch=(("test", 7), make))
            assert len(made) == 2 * threads
            assert ("test", 7) not in {key for key, _ in _parallel._local.scratch}
        finally:
            _parallel._SCRATCH_BYTES = limit
    finally:
        numba.set_num_threads(before)


def test_run_gang_threads_run_at_once_and_gangs_one_at_a_time():
    # Kernels whose threads meet at barriers (the float32 k-center scans): every range of a
    # gang must be running at once, and two gangs started together from two Python threads
    # must not each hold a pool thread while waiting for one queued behind the other.
    from fastal._kernels._intrinsics import atomic_add, atomic_load

    @numba.njit(nogil=True)
    def kernel(sync, out, n_threads, lo, hi):
        atomic_add(sync, 0)
        while atomic_load(sync, 0) < n_threads:  # everyone has arrived
            pass
        out[lo] = atomic_load(sync, 0)
        return 1

    threads = min(2, numba.config.NUMBA_NUM_THREADS)
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        outs = []

        def gang():
            out = np.zeros(threads, np.int64)
            outs.append((_parallel.run_gang(kernel, threads, np.zeros(8, np.int64), out,
                                            threads), out))

        gang()
        callers = [threading.Thread(target=gang) for _ in range(4)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(timeout=60)
        assert not any(caller.is_alive() for caller in callers)
    finally:
        numba.set_num_threads(before)
    assert len(outs) == 5
    for total, out in outs:
        assert total == threads and (out == threads).all()
    with pytest.raises(ValueError, match="gang"):  # more than can run at once
        _parallel.run_gang(kernel, numba.get_num_threads() + 1, np.zeros(8, np.int64),
                           np.zeros(8, np.int64), 1)


def test_scan32_from_several_python_threads_at_once():
    # The gangs of concurrent k-center calls queue on one lock: same picks as alone.
    rng = np.random.default_rng(11)
    X = rng.normal(size=(3000, 12)).astype(np.float32)
    expected = _kcenter(X, 60, path="scan").indices
    results = []

    def call():
        results.append(_kcenter(X, 60, path="scan").indices)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_ks, "MIN_ROWS_PER_THREAD", 100)
        callers = [threading.Thread(target=call) for _ in range(3)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(timeout=120)
    assert len(results) == 3
    for indices in results:
        np.testing.assert_array_equal(indices, expected)


def test_badge_gangs_from_several_python_threads_at_once(monkeypatch):
    # Concurrent BADGE calls (their picks' gangs queue on the gang lock, one gang call per
    # pick with PICKS_WORK at 1): each gets its seed's picks, as alone.
    monkeypatch.setattr(_kb, "PICKS_WORK", 1)
    rng = np.random.default_rng(12)
    X = rng.normal(size=(5000, 8)).astype(np.float32)
    probs = random_probs(rng, 5000, 3, dtype=np.float32)
    expected = [_badge(X, probs, 40, seed=s, gang=True).indices for s in range(3)]
    results = {}

    def call(s):
        results[s] = _badge(X, probs, 40, seed=s, gang=True).indices

    callers = [threading.Thread(target=call, args=(s,)) for s in range(3)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(timeout=120)
    assert sorted(results) == [0, 1, 2]
    for s in range(3):
        np.testing.assert_array_equal(results[s], expected[s])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_gang_running_at_fork_does_not_lock_the_child():
    # a lock held by another thread when the process forks would stay held in the child
    with _parallel._gang_lock, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork of a threaded process
        pid = os.fork()
        if pid == 0:  # the child: the lock is free, a gang runs
            code = 1
            try:
                if _parallel._gang_lock.acquire(blocking=False):
                    _parallel._gang_lock.release()
                    code = 0 if _parallel.run_gang(lambda lo, hi: hi - lo, 1) == 1 else 1
            finally:
                os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
