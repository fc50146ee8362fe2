"""What every data source gives the drivers: a row count, a width and chunks of rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .._config import CHUNK_BYTES, MIN_CHUNK_ROWS
from .._errors import ArgumentError, DataError


@dataclass(frozen=True)
class Chunk:
    """A run of consecutive pool rows.

    Attributes
    ----------
    start : int
        Global position of the first row.
    values : ndarray, shape (rows, width), float32 or float64
        C-contiguous rows, or for a pool stored as one column per class the transpose
        of a C-contiguous (width, rows) array (column-major: no interleaving copy).
    ids : ndarray or None
        Id of each row when the source carries an id column.
    """

    start: int
    values: np.ndarray
    ids: np.ndarray | None = None

    @property
    def stop(self) -> int:
        return self.start + self.values.shape[0]


class Source:
    """A pool of rows read chunk by chunk. Subclasses set the attributes and ``_pieces``."""

    name: str = "data"
    n_rows: int = 0
    width: int = 0
    dtype: np.dtype = np.dtype(np.float32)
    has_ids: bool = False
    n_members: int = 1  # > 1 when each row holds one vector per committee member

    def _pieces(self, chunk_rows: int) -> Iterator[Chunk]:  # pragma: no cover - abstract
        raise NotImplementedError

    def default_chunk_rows(self) -> int:
        row_bytes = max(1, self.width * self.dtype.itemsize)
        return max(MIN_CHUNK_ROWS, CHUNK_BYTES // row_bytes)

    def chunks(self, chunk_rows: int | None = None) -> Iterator[Chunk]:
        """Yield consecutive chunks of at most ``chunk_rows`` rows, in order.

        Pieces larger than a chunk are sliced without copying. A piece of at least half a
        chunk passes through as it is (no copy); smaller pieces (e.g. tiny Arrow record
        batches) are concatenated up to ``chunk_rows`` so kernels never see crumbs.
        """
        chunk_rows = check_chunk_rows(chunk_rows) or self.default_chunk_rows()
        pending: list[Chunk] = []
        pending_rows = 0
        for piece in self._pieces(chunk_rows):
            rows = piece.values.shape[0]
            if not pending and 2 * rows >= chunk_rows:
                for lo in range(0, rows, chunk_rows):
                    yield _slice(piece, lo, min(rows, lo + chunk_rows))
                continue
            offset = 0
            while offset < rows:
                take = min(rows - offset, chunk_rows - pending_rows)
                pending.append(_slice(piece, offset, offset + take))
                pending_rows += take
                offset += take
                if pending_rows == chunk_rows:
                    yield _concat(pending)
                    pending, pending_rows = [], 0
        if pending:
            yield _concat(pending)


    def read_all(self, chunk_rows: int | None = None) -> np.ndarray:
        """Every row in one (n_rows, width) array (for strategies that need the whole pool)."""
        out = np.empty((self.n_rows, self.width), dtype=self.dtype)
        for chunk in self.chunks(chunk_rows):
            out[chunk.start:chunk.stop] = chunk.values
        return out


def check_chunk_rows(chunk_rows):
    """Validate the ``chunk_rows`` argument (None means: choose from the row width)."""
    if chunk_rows is None:
        return None
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)):
        raise ArgumentError(f"chunk_rows must be a positive integer or None; got {chunk_rows!r}")
    if chunk_rows < 1:
        raise ArgumentError(f"chunk_rows must be >= 1; got {chunk_rows}")
    return int(chunk_rows)


def _slice(piece: Chunk, lo: int, hi: int) -> Chunk:
    if lo == 0 and hi == piece.values.shape[0]:
        return piece
    ids = None if piece.ids is None else piece.ids[lo:hi]
    return Chunk(piece.start + lo, piece.values[lo:hi], ids)


def _concat(parts: list[Chunk]) -> Chunk:
    if len(parts) == 1:
        return parts[0]
    values = np.concatenate([p.values for p in parts])
    ids = None if parts[0].ids is None else np.concatenate([p.ids for p in parts])
    return Chunk(parts[0].start, values, ids)


def compute_dtype(dtype, what: str) -> np.dtype:
    """The dtype kernels see for input of ``dtype``.

    float32 and float64 are kept (no copy); float16 and integers become float32; longer
    floats become float64. Anything else (bool, complex, strings, objects) is an error.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        if dtype.itemsize == 4 or dtype.itemsize == 8:
            return dtype
        return np.dtype(np.float32 if dtype.itemsize < 4 else np.float64)
    if dtype.kind in "iu":
        return np.dtype(np.float32)
    raise DataError(
        f"{what} must hold real numbers (float32/float64; integers and float16 are converted "
        f"to float32); got dtype {dtype}"
    )
