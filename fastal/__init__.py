"""fastal: decide which examples to label next, fast, in bounded memory.

The public verbs:

- :func:`score` -- one uncertainty score per row of a pool;
- :func:`top_k` -- the k most informative rows, streamed in O(chunk + k) memory;
- :class:`Selection` -- what every selection returns;
- :data:`UNCERTAINTY_METHODS` -- the method names;
- :class:`FastalError` -- raised for every bad input.
"""

from . import _config  # noqa: F401  (sets the OpenMP wait policy before any kernel runs)
from ._errors import FastalError
from ._selection import Selection
from .scoring import UNCERTAINTY_METHODS, score, top_k

__version__ = "0.1.0"

__all__ = ["FastalError", "Selection", "UNCERTAINTY_METHODS", "score", "top_k", "__version__"]
