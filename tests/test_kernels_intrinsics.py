"""fastal._kernels._intrinsics: the prefetch hints are hints (no load, no fault past an
array's end) and address the bytes they name; ``lane_sums`` sums in the order it defines."""

import numpy as np
import pytest
from numba import njit

from fastal._kernels._intrinsics import LANES, lane_sq, lane_sums, prefetch_at

from tests import reference


@njit
def _prefetch_rows(a, row, offsets):
    for k in range(offsets.shape[0]):
        prefetch_at(a, row, offsets[k])
    return a[row, 0]


def test_prefetch_at_past_the_end_does_not_fault():
    a = np.arange(40, dtype=np.float32).reshape(10, 4)
    # the kernels prefetch up to a block past the last row; far past it too, and before
    offsets = np.array([0, 16, 64, 1 << 20, 1 << 40, -(1 << 30)], dtype=np.int64)
    assert _prefetch_rows(a, 9, offsets) == 36.0
    assert _prefetch_rows(a, 0, offsets) == 0.0
    np.testing.assert_array_equal(a, np.arange(40, dtype=np.float32).reshape(10, 4))


def test_prefetch_at_is_a_prefetch_of_the_row_plus_offset():
    a = np.zeros((3, 4), dtype=np.float32)
    _prefetch_rows(a, 1, np.zeros(1, dtype=np.int64))
    ir = next(iter(_prefetch_rows.inspect_llvm().values()))
    assert "llvm.prefetch" in ir
    # the address is formed as an integer (no in-bounds GEP that could make it poison)
    assert "inttoptr" in ir


@njit
def _lane_sums_rows(X, center, out):
    a = np.empty(X.shape[0])
    b = np.empty(X.shape[0])
    for i in range(X.shape[0]):
        if center.shape[0]:
            lane_sums(X, i, center, out)
            b[i] = out[1]
        else:
            lane_sums(X, i, None, out)
            b[i] = 0.0
        a[i] = out[0]
    return a, b


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [1, 7, 8, 9, 16, 17, 24, 31, 32, 33, 40, 50, 63, 64, 65, 100,
                               128, 256, 300, 784])
def test_lane_sums_are_the_defined_order_bit_for_bit(d, dtype):
    """``lane_sums``: the squared distance to a centre, the dot of the difference with it,
    and (no centre) the squared norm, each summed in the order it defines (``reference.
    lane_sum``), bit for bit, for every tail length (whole vectors, then single lanes).
    Terms over 40 orders of magnitude and of both signs, so any other order or a fused
    multiply-add rounds differently."""
    rng = np.random.default_rng(d)
    n = 64
    X = rng.standard_normal((n, d)) * np.exp(rng.uniform(-46, 46, (n, d)))
    X[0] = 0.0
    X[1] = -0.0
    X = X.astype(dtype)
    center = X[5].astype(np.float64)
    diff = X.astype(np.float64) - center
    out = np.full(2, np.nan)
    a, b = _lane_sums_rows(X, center, out)
    np.testing.assert_array_equal(a, reference.lane_sum(diff * diff, LANES))
    np.testing.assert_array_equal(b, reference.lane_sum(diff * center, LANES))
    assert a[5] == 0.0 and b[5] == 0.0
    norms, _ = _lane_sums_rows(X, np.empty(0), out)
    x = X.astype(np.float64)
    np.testing.assert_array_equal(norms, reference.lane_sum(x * x, LANES))


def test_lane_sums_read_only_their_row():
    """Rows next to the one summed (the vector loads never reach past its end)."""
    X = np.full((3, 45), np.nan, dtype=np.float32)
    X[1] = np.arange(45, dtype=np.float32)
    out = np.empty(2)
    a, _ = _lane_sums_rows(X[1:2], np.empty(0), out)
    assert a[0] == float(np.sum(np.arange(45.0) ** 2))


@njit
def _lane_sq_rows(X, s, Y, r, t):
    out = np.empty(X.shape[0])
    for i in range(X.shape[0]):
        out[i] = lane_sq(X, i, s[i], Y, r, t)
    return out


@pytest.mark.parametrize("y_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [1, 9, 31, 32, 33, 50, 77, 128, 300])
def test_lane_sq_is_the_defined_order_bit_for_bit(d, dtype, y_dtype):
    """``lane_sq``: ``sum_j (x_j s - y_j t)^2`` (k-center's exact distances, cosine scales
    and l2's 1.0) in ``lane_sums``' order, bit for bit, to a row of a 2-D array and to a
    1-D centre; a row's distance to itself at scale 1 is 0."""
    rng = np.random.default_rng(d)
    n = 40
    X = (rng.standard_normal((n, d)) * np.exp(rng.uniform(-40, 40, (n, d)))).astype(dtype)
    Y = (rng.standard_normal((5, d)) * np.exp(rng.uniform(-40, 40, (5, d)))).astype(y_dtype)
    s = np.exp(rng.uniform(-3, 3, n))
    s[:10] = 1.0
    t = 0.37
    got = _lane_sq_rows(X, s, Y, 2, t)
    diff = X.astype(np.float64) * s[:, None] - Y[2].astype(np.float64) * t
    np.testing.assert_array_equal(got, reference.lane_sum(diff * diff))
    centre = Y[4].astype(np.float64)
    got = _lane_sq_rows(X, s, centre, 0, 1.0)
    diff = X.astype(np.float64) * s[:, None] - centre
    np.testing.assert_array_equal(got, reference.lane_sum(diff * diff))
    assert _lane_sq_rows(X[:1], np.ones(1), X, 0, 1.0)[0] == 0.0
