"""The result type of every selection verb."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Selection:
    """Rows picked from a pool, most informative first.

    Attributes
    ----------
    indices : ndarray of int64, shape (k,)
        Global row positions in the pool (0-based, in reading order).
    scores : ndarray of float32, shape (k,)
        The score of each picked row (higher = more informative). For diversity
        strategies this is the strategy's own criterion (documented per strategy).
    ids : ndarray or None, shape (k,)
        Values of the id column for the picked rows, when an id column was given.
    method : str
        The method or strategy that produced the selection.
    n_pool : int
        Number of rows in the pool that was scored.
    extra : dict
        Strategy-specific diagnostics (e.g. ``covering_radius`` for k-center).
    """

    indices: np.ndarray
    scores: np.ndarray
    ids: np.ndarray | None = None
    method: str = ""
    n_pool: int = 0
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def to_arrow(self):
        """Return the selection as a ``pyarrow.Table`` (rank, index, [id], score)."""
        import pyarrow as pa

        cols = {
            "rank": pa.array(np.arange(len(self), dtype=np.int64)),
            "index": pa.array(self.indices),
        }
        if self.ids is not None:
            cols["id"] = pa.array(self.ids)
        cols["score"] = pa.array(self.scores)
        return pa.table(cols)
