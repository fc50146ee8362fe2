"""fastal._kernels._math: the vectorisable float32 logarithm against NumPy in float64."""

import numpy as np
from numba import njit

from fastal._kernels._math import log32


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
