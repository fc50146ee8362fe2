"""fastal._kernels._intrinsics: the prefetch hints are hints (no load, no fault past an
array's end) and address the bytes they name."""

import numpy as np
from numba import njit

from fastal._kernels._intrinsics import prefetch_at


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
