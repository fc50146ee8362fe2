"""Tests for fastal.datasets.digits."""

from __future__ import annotations

import numpy as np

from fastal import datasets



def test_load_digits_shapes_and_dtypes():
    X, y = datasets.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32 and X.flags.c_contiguous
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 16.0
    assert np.array_equal(np.unique(y), np.arange(10))
    assert np.bincount(y).min() >= 170


def test_load_digits_scaled():
    X, _ = datasets.load_digits()
    X_scaled, _ = datasets.load_digits(scale=True)
    assert X_scaled.dtype == np.float32 and X_scaled.max() == 1.0
    np.testing.assert_allclose(X_scaled, X / 16.0, rtol=0, atol=1e-7)

