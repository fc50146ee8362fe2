"""In-memory arrays: NumPy, anything with ``__dlpack__`` or ``__array__`` (torch, cupy-on-host, ...)."""

from __future__ import annotations

import numpy as np

from .._config import IN_MEMORY_CHUNK_BYTES, MIN_CHUNK_ROWS
from .._errors import DataError
from ._base import Chunk, Source, compute_dtype


def to_numpy(data, what: str = "data") -> np.ndarray:
    """View ``data`` as a NumPy array without copying where the producer allows it."""
    if isinstance(data, np.ndarray):
        return data
    if hasattr(data, "__dlpack__") and not hasattr(data, "__array_interface__"):
        try:
            return np.from_dlpack(data)
        except Exception:  # e.g. a device tensor or an unsupported dtype: fall back to __array__
            pass
    try:
        array = np.asarray(data)
    except Exception as exc:
        raise DataError(f"{what} could not be read as an array: {exc}") from exc
    if array.dtype == object:
        raise DataError(
            f"{what} must be a numeric array (rows, columns); got an object array "
            f"(ragged rows or mixed types?) of shape {array.shape}"
        )
    return array


class ArraySource(Source):
    """A 2-D array held in memory, read in row slices (views, no copies for float32/64)."""

    def __init__(self, data, what: str = "data"):
        array = to_numpy(data, what)
        if array.ndim != 2:
            raise DataError(
                f"{what} must be 2-D (rows, classes); got shape {array.shape}"
            )
        self.dtype = compute_dtype(array.dtype, what)
        self.array = array
        self.name = what
        self.n_rows, self.width = array.shape
        self.has_ids = False

    def default_chunk_rows(self) -> int:
        row_bytes = max(1, self.width * self.dtype.itemsize)
        return max(MIN_CHUNK_ROWS, IN_MEMORY_CHUNK_BYTES // row_bytes)

    def _pieces(self, chunk_rows):
        for start in range(0, self.n_rows, chunk_rows):
            block = self.array[start:start + chunk_rows]
            values = np.ascontiguousarray(block, dtype=self.dtype)
            yield Chunk(start, values)
