"""What the loop's files share: the strategy names, argument checks, rows of a pool."""

from __future__ import annotations

import numbers

import numpy as np

from .._errors import ArgumentError, DataError
from .._validation import check_int, make_rng

#: Strategy names accepted by :class:`ActiveLoop` and :func:`simulate`. A callable
#: ``strategy(probs, X, labeled_mask, k, rng) -> positions`` is accepted too.
from ..select import STRATEGIES  # noqa: E402  (the one registry, shared with fastal.select)

#: The default strategy: the one ``fastal.select`` uses (see ``fastal.select.DEFAULT_STRATEGY``).
from ..select import DEFAULT_STRATEGY  # noqa: E402,F401

#: Strategies that need no model (usable for the seed set / a cold start).
MODEL_FREE_STRATEGIES = tuple(n for n, s in STRATEGIES.items() if "probs" not in s.needs)

#: Ways to choose the seed set.
SEED_STRATEGIES = ("random", "stratified", "kcenter", "typiclust")


# --------------------------------------------------------------------------- helpers


_rng = make_rng
_check_int = check_int


def _check_fraction(value, name, *, low=0.0, high=1.0):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
            or not (low <= float(value) <= high):
        raise ArgumentError(f"{name} must be a number in [{low}, {high}]; got {value!r}")
    return float(value)


def _n_rows(X, name) -> int:
    shape = getattr(X, "shape", None)
    if shape is None or len(shape) != 2:
        raise DataError(f"{name} must be 2-D (rows, features); got "
                        f"{'shape ' + str(tuple(shape)) if shape is not None else type(X).__name__}")
    return int(shape[0])


def _rows(X, positions):
    """Rows of a NumPy array or a scipy sparse matrix."""
    return X[positions]


def _strategy_name(strategy) -> str:
    if isinstance(strategy, str):
        return strategy
    return getattr(strategy, "__name__", type(strategy).__name__)


def _check_strategy(strategy, name="strategy"):
    if callable(strategy):
        return strategy
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        raise ArgumentError(f"{name} must be one of {', '.join(STRATEGIES)} or a callable "
                            f"strategy(probs, X, labeled_mask, k, rng) -> positions; "
                            f"got {strategy!r}")
    return strategy


def needs_model(strategy) -> bool:
    """Whether ``strategy`` reads the model's probabilities (callables are assumed to)."""
    return not (isinstance(strategy, str) and strategy in MODEL_FREE_STRATEGIES)


def _needs_embeddings(strategy) -> bool:
    return isinstance(strategy, str) and "embeddings" in STRATEGIES[strategy].needs


def _dense_embeddings(X, name):
    if not isinstance(X, np.ndarray):
        raise DataError(f"{name} must be a dense NumPy array for k-center strategies; got "
                        f"{type(X).__name__} (pass embeddings=, e.g. a TruncatedSVD of "
                        "sparse features)")
    return X

