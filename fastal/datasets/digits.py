"""scikit-learn's bundled 8x8 handwritten digits (no download)."""

from __future__ import annotations

import numpy as np


def load_digits(*, scale: bool = False):
    """Load scikit-learn's bundled 8x8 handwritten digits (no download).

    A thin wrapper over :func:`sklearn.datasets.load_digits` that fixes the dtypes.

    Parameters
    ----------
    scale : bool, default=False
        If False, pixels keep their original integer values 0..16 (stored as
        float32). If True, they are divided by 16 into [0, 1], the same range as
        :func:`load_fashion_mnist`'s default.

    Returns
    -------
    X : ndarray of float32, shape (1797, 64)
        Flattened 8x8 images, C-contiguous.
    y : ndarray of int64, shape (1797,)
        Digit labels 0..9 (about 180 rows per class).

    Examples
    --------
    >>> from fastal.datasets import load_digits
    >>> X, y = load_digits()
    >>> X.shape, X.dtype, y.dtype
    ((1797, 64), dtype('float32'), dtype('int64'))
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    X = np.ascontiguousarray(bunch.data, dtype=np.float32)
    if scale:
        X /= np.float32(16.0)
    y = np.ascontiguousarray(bunch.target, dtype=np.int64)
    return X, y
