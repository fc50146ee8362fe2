"""fastal: decide which examples to label next, fast, in bounded memory.

The public verbs:

- :func:`score` -- one uncertainty score per row of a pool;
- :func:`top_k` -- the k most informative rows, streamed in O(chunk + k) memory;
- :func:`select` -- the next batch by any strategy (:func:`strategies` lists them);
- :func:`kcenter` -- exact greedy k-center (core-set) on embeddings;
- :class:`ActiveLoop` -- the loop for a person annotating (yields batches, takes labels);
- :func:`simulate` -- learning curves and the labels-saved table against random sampling;
- :class:`Selection` -- what every selection returns;
- :data:`METHODS` -- every scoring method name (uncertainty, committee, expected gradient
  length); :mod:`fastal.models` scores embeddings through a linear head or a committee;
- :func:`warmup` -- compile the kernels into Numba's on-disk cache ahead of time;
- :class:`FastalError` -- raised for every bad input.
"""

from . import _config  # noqa: F401  (sets the OpenMP wait policy before any kernel runs)
from ._errors import ArgumentError, DataError, FastalError, FileError, LedgerError
from ._selection import Selection
from .diversity import kcenter
from . import models
from .loop import ActiveLoop, Batch, SimulationResult, labels_saved, simulate
from .scoring import COMMITTEE_METHODS, METHODS, UNCERTAINTY_METHODS, score, top_k
from .select import DEFAULT_STRATEGY, STRATEGIES, select, strategies
from ._warmup import warmup

__version__ = "0.1.0"

__all__ = [
    "ActiveLoop", "Batch", "COMMITTEE_METHODS", "DEFAULT_STRATEGY", "SimulationResult",
    "labels_saved", "simulate", "ArgumentError", "DataError", "FastalError", "FileError", "LedgerError", "METHODS", "STRATEGIES",
    "Selection", "UNCERTAINTY_METHODS", "kcenter", "models", "score", "select", "strategies", "top_k", "warmup", "__version__",
]
