"""fastal._kernels._math: the vectorisable float32 logarithm and exponentials against NumPy
in float64."""

import numpy as np
from numba import njit

from fastal._kernels._math import exp32, exp32_in_range, log32


@njit(cache=True)
def _log_all(x, out):
    for i in range(x.shape[0]):
        out[i] = log32(x[i])


def check(x):
    x = np.asarray(x, dtype=np.float32)
    out = np.empty_like(x)
    _log_all(x, out)
    want = np.log(x.astype(np.float64))
    err = np.abs(out - want) / np.maximum(np.abs(want), 1.0)
    assert err.max() < 3e-7, (x[np.argmax(err)], out[np.argmax(err)], want[np.argmax(err)])


def test_log32_random_and_edges():
    rng = np.random.default_rng(0)
    check(rng.uniform(0, 1, 200_000).astype(np.float32) + np.float32(1e-30))
    check(np.exp(rng.uniform(-87, 88, 200_000)))
    tiny = np.finfo(np.float32).tiny
    edges = [tiny, np.nextafter(tiny, 1), 0.5, 1.0, 2.0, np.sqrt(2), np.sqrt(0.5),
             np.nextafter(np.float32(np.sqrt(2)), 2), np.nextafter(np.float32(np.sqrt(2)), 0),
             np.nextafter(np.float32(1), 0), np.nextafter(np.float32(1), 2), 1e-20, 3e38,
             np.finfo(np.float32).max]
    check(edges)
    check(2.0 ** np.arange(-126, 128))


def test_log32_of_one_is_zero():
    out = np.empty(1, dtype=np.float32)
    _log_all(np.ones(1, dtype=np.float32), out)
    assert out[0] == 0.0


@njit(cache=True)
def _exp_all(x, out, in_range):
    for i in range(x.shape[0]):
        out[i] = exp32_in_range(x[i]) if in_range else exp32(x[i])


def exp_error(x, in_range=False):
    """The largest relative error of exp32 (or exp32_in_range) over x, against float64."""
    x = np.asarray(x, dtype=np.float32)
    out = np.empty_like(x)
    _exp_all(x, out, in_range)
    want = np.exp(x.astype(np.float64))
    return (np.abs(out - want) / want).max()


def test_exp32_random_and_edges():
    rng = np.random.default_rng(1)
    lowest = np.float32(-87.33)
    for in_range in (False, True):
        assert exp_error(rng.uniform(-87.33, 0, 500_000), in_range) < 2e-7
        assert exp_error(-rng.exponential(0.3, 500_000), in_range) < 2e-7
        # around every reduction boundary n ln 2 +- ln 2 / 2, and the ends of the range
        k = np.arange(0, 126)
        halves = np.float32(-np.log(2) * (k + 0.5))
        edges = np.concatenate([halves, np.nextafter(halves, 0), np.nextafter(halves, -1),
                                np.float32(-np.log(2) * k), [lowest, np.float32(-1e-30),
                                np.float32(-1e-7), -np.finfo(np.float32).tiny]])
        assert exp_error(edges, in_range) < 2e-7


def test_exp32_outside_range_and_special_values():
    x = np.array([0.0, -0.0, -87.34, -88.0, -104.0, -3e38, -np.inf, np.nan], np.float32)
    out = np.empty_like(x)
    _exp_all(x, out, False)
    assert out[0] == 1.0 and out[1] == 1.0
    assert np.all(out[2:7] == 0.0)
    assert np.isnan(out[7])
    _exp_all(x[:2], out[:2], True)
    assert out[0] == 1.0 and out[1] == 1.0


def test_exp32_error_bound_can_fail():
    # the check itself: a deliberately wrong result (e**x * (1 + 1e-6)) exceeds the bound
    x = np.float32([-1.0])
    want = np.exp(np.float64(x[0]))
    assert abs(np.float32(want * (1 + 1e-6)) - want) / want > 2e-7
