"""fastal: decide which examples to label next, fast, in bounded memory.

The public verbs:

- :func:`score` -- one uncertainty score per row of a pool;
- :func:`top_k` -- the k most informative rows, streamed in O(chunk + k) memory;
- :func:`select` -- the next batch by any strategy (:func:`strategies` lists them);
- :func:`kcenter` -- exact greedy k-center (core-set) on embeddings;
- :class:`Selection` -- what every selection returns;
- :data:`UNCERTAINTY_METHODS` -- the method names;
- :class:`FastalError` -- raised for every bad input.
"""

from . import _config  # noqa: F401  (sets the OpenMP wait policy before any kernel runs)
from ._errors import FastalError
from ._selection import Selection
from .diversity import kcenter
from .scoring import UNCERTAINTY_METHODS, score, top_k
from .select import DEFAULT_STRATEGY, STRATEGIES, select, strategies

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_STRATEGY", "FastalError", "STRATEGIES", "Selection", "UNCERTAINTY_METHODS",
    "kcenter", "score", "select", "strategies", "top_k", "__version__",
]
