"""The active-learning loop (a human annotating) and its simulation on labeled data.

fastal never trains anything: the model is the user's, either a scikit-learn style
estimator (``fit`` / ``predict_proba``, cloned for every round) or a pair of callables
``train(X, y) -> model`` and ``predict_proba(model, X) -> probs``. fastal decides which rows
to ask about, records every label it is told, and says when to stop.

Strategies are resolved by name in one function, :func:`_select_batch`, so a later
``fastal.select`` entry point can replace it without touching the loop.
"""

from __future__ import annotations

import numbers
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ._errors import FastalError
from ._validation import check_int, make_rng
from .scoring import UNCERTAINTY_METHODS, score

#: Strategy names accepted by :class:`ActiveLoop` and :func:`simulate`. A callable
#: ``strategy(probs, X, labeled_mask, k, rng) -> positions`` is accepted too.
from .select import STRATEGIES  # noqa: E402  (the one registry, shared with fastal.select)

#: The default strategy, chosen by measurement (bench/label_efficiency.md): margin sampling
#: saved the most labels on Fashion-MNIST and never lost to random sampling.
DEFAULT_STRATEGY = "margin"

#: Strategies that need no model (usable for the seed set / a cold start).
MODEL_FREE_STRATEGIES = tuple(n for n, s in STRATEGIES.items() if "probs" not in s.needs)

#: Ways to choose the seed set.
SEED_STRATEGIES = ("random", "stratified", "kcenter")

#: Names that :attr:`ActiveLoop.stopped_by` can take.
STOP_REASONS = ("budget", "max_rounds", "target", "stable_predictions", "low_uncertainty",
                "pool_exhausted")


# --------------------------------------------------------------------------- helpers


_rng = make_rng
_check_int = check_int


def _check_fraction(value, name, *, low=0.0, high=1.0):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
            or not (low <= float(value) <= high):
        raise FastalError(f"{name} must be a number in [{low}, {high}]; got {value!r}")
    return float(value)


def _n_rows(X, name) -> int:
    shape = getattr(X, "shape", None)
    if shape is None or len(shape) != 2:
        raise FastalError(f"{name} must be 2-D (rows, features); got "
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
        raise FastalError(f"{name} must be one of {', '.join(STRATEGIES)} or a callable "
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
        raise FastalError(f"{name} must be a dense NumPy array for k-center strategies; got "
                          f"{type(X).__name__} (pass embeddings=, e.g. a TruncatedSVD of "
                          "sparse features)")
    return X


# --------------------------------------------------------------------------- strategies


def _select_batch(strategy, *, probs, X, labeled_mask, k, rng, **options) -> np.ndarray:
    """Pool positions of the next ``k`` rows to label, by ``strategy``.

    This is the one place strategy names are resolved.

    Parameters
    ----------
    strategy : str or callable
        A name in :data:`STRATEGIES`, or ``strategy(probs, X, labeled_mask, k, rng)``
        returning ``k`` distinct unlabeled pool positions.
    probs : ndarray (N, C) or None
        The current model's class probabilities for every pool row (None before any model).
    X : ndarray (N, d) or None
        Pool embeddings for the k-center strategies.
    labeled_mask : ndarray of bool (N,)
        Rows that must not be picked (labeled, or handed out and not yet labeled).
    k : int
        Batch size, ``1 <= k <=`` number of unpicked rows.
    rng : numpy.random.Generator
        The loop's generator; every random choice draws from it.
    **options
        ``beta`` (int, default 10) for ``"uncertain_kcenter"``: the k-center step picks
        among the ``beta * k`` highest-margin unlabeled rows. ``metric`` (``"l2"`` or
        ``"cosine"``) for the k-center strategies.

    Returns
    -------
    ndarray of int64, shape (k,)
        Distinct pool positions, most preferred first.
    """
    unlabeled = np.flatnonzero(~labeled_mask)
    if k > unlabeled.size:
        raise FastalError(f"batch size {k} is larger than the remaining pool "
                          f"({unlabeled.size} unlabeled rows)")
    if callable(strategy):
        picked = np.asarray(strategy(probs, X, labeled_mask, k, rng))
        return _check_custom_pick(picked, labeled_mask, k, _strategy_name(strategy))
    from .select import select

    spec = STRATEGIES[strategy]
    # One draw from the loop's generator seeds the strategy, so a loop's seed fixes every batch.
    seed = int(rng.integers(2**31))
    if "embeddings" in spec.needs:
        data, extra = X, ({"probs": probs} if "probs" in spec.needs else {})
    else:
        data, extra = (probs if probs is not None else labeled_mask), {}
    return select(data, k, strategy, labeled=labeled_mask, seed=seed, **extra,
                  **options).indices.astype(np.int64)


def _check_custom_pick(picked, labeled_mask, k, name):
    n = labeled_mask.shape[0]
    if picked.ndim != 1 or picked.dtype.kind not in "iu":
        raise FastalError(f"strategy {name} must return a 1-D array of integer positions; "
                          f"got shape {picked.shape} dtype {picked.dtype}")
    if picked.size != k:
        raise FastalError(f"strategy {name} must return {k} positions; got {picked.size}")
    if picked.size and (picked.min() < 0 or picked.max() >= n):
        raise FastalError(f"strategy {name} returned positions outside [0, {n})")
    if np.unique(picked).size != k:
        raise FastalError(f"strategy {name} returned repeated positions")
    if labeled_mask[picked].any():
        bad = int(picked[labeled_mask[picked]][0])
        raise FastalError(f"strategy {name} returned position {bad}, which is already labeled "
                          "or handed out")
    return picked.astype(np.int64)


def initial_positions(kind, n, *, n_pool, X=None, y=None, rng, metric="l2") -> np.ndarray:
    """Pool positions of a seed set of ``n`` rows.

    ``"random"``: uniform without replacement. ``"stratified"``: ``y`` is required; each class
    gets a share proportional to its frequency (largest remainders), at least one row per
    class when ``n`` allows. ``"kcenter"``: greedy k-center on ``X`` from a random first row
    (a cold start that needs no labels).
    """
    if kind not in SEED_STRATEGIES:
        raise FastalError(f"seed_strategy must be one of {', '.join(SEED_STRATEGIES)}; "
                          f"got {kind!r}")
    n = _check_int(n, "seed_size", 1, n_pool)
    if kind == "random":
        return np.sort(rng.choice(n_pool, size=n, replace=False)).astype(np.int64)
    if kind == "kcenter":
        from .diversity import kcenter

        X = _dense_embeddings(X, "X (embeddings)")
        return kcenter(X, n, metric=metric, seed=int(rng.integers(2**31))).indices
    if y is None:
        raise FastalError("seed_strategy='stratified' needs the labels of the pool (as in a "
                          "simulation); with a human annotator pass labeled=(positions, "
                          "labels) or use 'random' / 'kcenter'")
    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    exact = n * counts / counts.sum()
    share = np.floor(exact).astype(np.int64)
    if n >= classes.size:
        share = np.maximum(share, 1)
    # Hand the remaining rows to the largest remainders (ties: lower class first).
    while share.sum() < n:
        room = share < counts
        j = int(np.argmax(np.where(room, exact - share, -np.inf)))
        share[j] += 1
    while share.sum() > n:
        j = int(np.argmax(np.where(share > 1, share - exact, -np.inf)))
        share[j] -= 1
    picked = [rng.choice(np.flatnonzero(y == c), size=int(s), replace=False)
              for c, s in zip(classes, share) if s > 0]
    return np.sort(np.concatenate(picked)).astype(np.int64)


# --------------------------------------------------------------------------- the model


class _Model:
    """The user's model behind one interface: fit a fresh copy, predict probabilities."""

    def __init__(self, model):
        if isinstance(model, tuple):
            if len(model) != 2 or not all(callable(f) for f in model):
                raise FastalError("model as a tuple must be (train, predict_proba): two "
                                  "callables train(X, y) -> model and "
                                  "predict_proba(model, X) -> probs")
            self.train, self.predict = model
            self.estimator = None
        elif hasattr(model, "fit") and hasattr(model, "predict_proba"):
            self.estimator = model
        else:
            raise FastalError("model must be a scikit-learn style estimator with fit and "
                              "predict_proba, or a pair (train, predict_proba); got "
                              f"{type(model).__name__}")

    def fit(self, X, y):
        if self.estimator is not None:
            from sklearn.base import clone

            return clone(self.estimator).fit(X, y)
        return self.train(X, y)

    def predict_proba(self, fitted, X):
        if self.estimator is not None:
            probs = fitted.predict_proba(X)
        else:
            probs = self.predict(fitted, X)
        probs = np.asarray(probs)
        if probs.ndim != 2 or probs.shape[0] != _n_rows(X, "X"):
            raise FastalError(f"predict_proba must return shape ({_n_rows(X, 'X')}, classes); "
                              f"got {probs.shape}")
        return probs

    @staticmethod
    def classes(fitted, declared, seen):
        """Class of each probability column: the model's ``classes_``, else the declared
        classes, else the sorted labels seen so far."""
        fitted_classes = getattr(fitted, "classes_", None)
        if fitted_classes is not None:
            return np.asarray(fitted_classes)
        if declared is not None:
            return declared
        return np.unique(seen)


def cohen_kappa(a, b) -> float:
    """Cohen's kappa between two label vectors; 1.0 when both are one identical constant.

    kappa = (p_o - p_e) / (1 - p_e), with p_o the observed agreement and p_e the agreement
    expected from each vector's class frequencies (Cohen, 1960).
    """
    a = np.asarray(a)
    b = np.asarray(b)
    classes, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
    ca, cb = codes[: a.size], codes[a.size:]
    p_o = float(np.mean(ca == cb))
    fa = np.bincount(ca, minlength=classes.size) / a.size
    fb = np.bincount(cb, minlength=classes.size) / b.size
    p_e = float(np.dot(fa, fb))
    if p_e >= 1.0:
        return 1.0 if p_o >= 1.0 else 0.0
    return (p_o - p_e) / (1.0 - p_e)


# --------------------------------------------------------------------------- the loop


@dataclass(frozen=True)
class Batch:
    """Rows the loop asks to be labeled next.

    Attributes
    ----------
    positions : ndarray of int64
        Pool positions, most preferred first.
    ids : ndarray or None
        ``ids[positions]`` when the loop was given ``ids``.
    round : int
        0 for the seed batch (chosen without a model), then 1, 2, ...
    strategy : str
        The strategy that picked the rows.
    n_labeled : int
        Labels recorded when the batch was chosen.
    """

    positions: np.ndarray
    ids: np.ndarray | None
    round: int
    strategy: str
    n_labeled: int

    def __len__(self) -> int:
        return int(self.positions.shape[0])


@dataclass(frozen=True)
class RoundRecord:
    """What happened when the loop trained a model and chose a batch.

    ``metric`` is the validation metric (None without a validation set); ``kappa`` the
    agreement with the previous model on the stop set (None without one or at the first
    model); ``uncertainty`` the mean uncertainty score over the unlabeled pool; times are
    seconds of the user's training (``fit_seconds``), of predicting the pool
    (``predict_seconds``) and of fastal's selection (``select_seconds``).
    """

    round: int
    n_labeled: int
    metric: float | None
    kappa: float | None
    uncertainty: float | None
    fit_seconds: float
    predict_seconds: float
    select_seconds: float
    n_selected: int


class ActiveLoop:
    """Pool-based active learning, one batch at a time, for a human annotator.

    Iterate to get :class:`Batch` es; give their labels back with :meth:`teach`. Before each
    batch (except the seed batch) the model is retrained on every label received, then the
    stopping criteria are checked; the iteration ends when one fires, and
    :attr:`stopped_by` names it.

    Parameters
    ----------
    model : estimator or (train, predict_proba)
        A scikit-learn style estimator (``sklearn.base.clone`` d and fitted each round), or a
        pair of callables ``train(X, y) -> model`` and ``predict_proba(model, X) -> probs``.
        Without ``classes_`` on the fitted model, probability columns are taken to be
        ``classes`` (or the sorted labels seen so far).
    X : array (N, features) or scipy sparse matrix
        The pool, as the model takes it.
    strategy : str or callable, default "margin"
        See :data:`STRATEGIES`; a callable ``strategy(probs, X, labeled_mask, k, rng)``.
    batch_size : int, default 100
        Rows per batch (the last batch is cut to the budget or the remaining pool).
    labeled : (positions, labels), optional
        Labels known before the loop starts (recorded as round 0, not asked).
    seed_size : int, default 0
        Size of a seed batch chosen without a model, when ``labeled`` is not given.
    seed_strategy : {"random", "kcenter"}, default "random"
        How the seed batch is chosen ("kcenter": a cold start on ``embeddings``).
    classes : array-like, optional
        The declared classes; labels outside them are refused.
    ids : array-like (N,), optional
        Row identifiers, returned in each batch.
    embeddings : ndarray (N, d), optional
        Features for the k-center strategies (default ``X`` when it is a dense array).
    strategy_options : dict, optional
        Passed to the strategy (``beta``, ``metric``).
    budget : int, optional
        Stop once this many labels are recorded (seed labels included).
    max_rounds : int, optional
        Stop after this many model-driven batches.
    validation : (X_val, y_val), optional
        Scored after every training with ``metric``; recorded in :attr:`history`.
    target : float, optional
        Stop once the validation metric reaches it (needs ``validation``).
    metric : "accuracy" or callable(y_true, y_pred) -> float, default "accuracy"
    stop_set : array (M, features), optional
        Fixed unlabeled rows for the stabilising-predictions criterion (default: up to
        1,000 pool rows drawn with ``seed`` when ``kappa_threshold`` is given).
    kappa_threshold : float, optional
        Stop when the mean Cohen's kappa between successive models' predictions on the stop
        set, over the last ``kappa_window`` retrainings, is at least this (Bloodgood &
        Vijay-Shanker, 2009, use 0.99 and a window of 3).
    kappa_window : int, default 3
    uncertainty_threshold : float, optional
        Stop when the mean ``uncertainty_method`` score over the unlabeled pool falls below it.
    uncertainty_method : str, default "least_confidence"
        ``least_confidence`` (mean 1 - max probability) or any of ``UNCERTAINTY_METHODS``.
    allow_stale : bool, default False
        Allow choosing a new batch before any label of the previous one arrived (the new
        batch then comes from the same model; rows handed out are never handed out again).
    seed : int, Generator or None, default 0
        The only source of randomness: same inputs and seed give the same batches.

    Attributes
    ----------
    labeled_positions, labels : ndarray
        Every label received, in arrival order (append-only; kept when an error occurs).
    model : fitted model or None
        The latest fitted model.
    history : list of RoundRecord
    stopped_by : str or None
        One of :data:`STOP_REASONS` once the iteration has ended.

    Raises
    ------
    FastalError
        Bad arguments; labels for rows outside the pool, already labeled or not in the
        batch handed out; labels outside ``classes``; a batch size larger than the pool; an
        empty seed set with a strategy that needs a model; a model whose fit raises (the
        labels stay recorded); choosing twice from a stale model without ``allow_stale``.

    References
    ----------
    M. Bloodgood and K. Vijay-Shanker, "A Method for Stopping Active Learning Based on
    Stabilizing Predictions and the Need for User-Adjustable Stopping", CoNLL 2009.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from fastal.datasets import load_digits
    >>> from fastal.loop import ActiveLoop
    >>> X, y = load_digits(scale=True)
    >>> loop = ActiveLoop(LogisticRegression(max_iter=500), X, batch_size=20, seed_size=30,
    ...                   budget=90, seed=0)
    >>> for batch in loop:
    ...     loop.teach(batch.positions, y[batch.positions])   # a human would answer here
    >>> len(loop.labels), loop.stopped_by
    (90, 'budget')
    """

    def __init__(self, model, X, *, strategy=DEFAULT_STRATEGY, batch_size=100, labeled=None,
                 seed_size=0, seed_strategy="random", classes=None, ids=None,
                 embeddings=None, strategy_options=None, budget=None, max_rounds=None,
                 validation=None, target=None, metric="accuracy", stop_set=None,
                 kappa_threshold=None, kappa_window=3, uncertainty_threshold=None,
                 uncertainty_method="least_confidence", allow_stale=False, seed=0):
        self._model = _Model(model)
        self.X = X
        self.n_pool = _n_rows(X, "X")
        if self.n_pool == 0:
            raise FastalError("X has no rows: the pool is empty")
        self.strategy = _check_strategy(strategy)
        self.strategy_name = _strategy_name(self.strategy)
        self.strategy_options = dict(strategy_options or {})
        self.batch_size = _check_int(batch_size, "batch_size", 1)
        self._rng = _rng(seed)
        self.classes = None if classes is None else np.unique(np.asarray(classes))
        self.ids = None if ids is None else np.asarray(ids)
        if self.ids is not None and self.ids.shape != (self.n_pool,):
            raise FastalError(f"ids must have shape ({self.n_pool},) (one per pool row); "
                              f"got {self.ids.shape}")
        if embeddings is None and (_needs_embeddings(self.strategy)
                                   or seed_strategy == "kcenter"):
            embeddings = _dense_embeddings(X, "X")
        if embeddings is not None:
            embeddings = np.asarray(embeddings)
            if embeddings.ndim != 2 or embeddings.shape[0] != self.n_pool:
                raise FastalError(f"embeddings must have shape ({self.n_pool}, d); "
                                  f"got {embeddings.shape}")
        self.embeddings = embeddings
        self.budget = None if budget is None else _check_int(budget, "budget", 1)
        self.max_rounds = None if max_rounds is None else _check_int(max_rounds, "max_rounds", 1)
        self.allow_stale = bool(allow_stale)
        self._init_stopping(validation, target, metric, stop_set, kappa_threshold,
                            kappa_window, uncertainty_threshold, uncertainty_method)

        # Append-only record of every label received (never rewritten).
        self._positions: list[int] = []
        self._labels: list = []
        self._is_labeled = np.zeros(self.n_pool, dtype=bool)
        self._pending = np.zeros(self.n_pool, dtype=bool)  # handed out, not yet labeled
        self._pending_fresh = False  # last batch handed out and no label of it yet
        self.model = None
        self._model_n = -1  # labels the current model was fitted on
        self._probs = None
        self._last_stats = None
        self._previous_stop_predictions = None
        self._kappas: list[float] = []
        self.history: list[RoundRecord] = []
        self.round = 0
        self.stopped_by = None

        available = self.n_pool
        if labeled is not None:
            positions, labels = self._parse_labeled(labeled)
            self._record(positions, labels)
            available -= positions.size
        self.seed_strategy = seed_strategy
        self.seed_size = _check_int(seed_size, "seed_size", 0, self.n_pool)
        if labeled is None and self.seed_size:
            if seed_strategy not in ("random", "kcenter"):
                raise FastalError("seed_strategy must be 'random' or 'kcenter' in a loop "
                                  "without known labels (stratified needs labels: pass "
                                  f"labeled=(positions, labels)); got {seed_strategy!r}")
        if labeled is None and self.seed_size == 0 and needs_model(self.strategy):
            raise FastalError(f"the seed set is empty and strategy {self.strategy_name!r} "
                              "needs a model: pass seed_size > 0 (or labeled=(positions, "
                              "labels)), or use a model-free strategy (random, kcenter)")
        if self.batch_size > available:
            raise FastalError(f"batch_size={self.batch_size} is larger than the remaining pool "
                              f"({available} unlabeled rows)")

    # ------------------------------------------------------------------ validation

    def _init_stopping(self, validation, target, metric, stop_set, kappa_threshold,
                       kappa_window, uncertainty_threshold, uncertainty_method):
        self.validation = None
        if validation is not None:
            if not isinstance(validation, (tuple, list)) or len(validation) != 2:
                raise FastalError("validation must be a pair (X_val, y_val)")
            X_val, y_val = validation
            y_val = np.asarray(y_val)
            if _n_rows(X_val, "validation X") != y_val.shape[0]:
                raise FastalError(f"validation X has {_n_rows(X_val, 'validation X')} rows but "
                                  f"y has {y_val.shape[0]}")
            self.validation = (X_val, y_val)
        if metric != "accuracy" and not callable(metric):
            raise FastalError(f"metric must be 'accuracy' or a callable(y_true, y_pred); "
                              f"got {metric!r}")
        self.metric = metric
        self.target = None
        if target is not None:
            if self.validation is None:
                raise FastalError("target needs validation=(X_val, y_val) to measure the metric")
            if isinstance(target, bool) or not isinstance(target, numbers.Real):
                raise FastalError(f"target must be a number; got {target!r}")
            self.target = float(target)
        self.kappa_threshold = None
        self.kappa_window = _check_int(kappa_window, "kappa_window", 1)
        self.stop_set = None
        if kappa_threshold is not None:
            self.kappa_threshold = _check_fraction(kappa_threshold, "kappa_threshold",
                                                   low=-1.0)
            if stop_set is None:
                # Drawn from its own stream so that it does not shift the batches.
                sub = np.random.default_rng(self._rng.integers(2**63))
                size = min(1000, self.n_pool)
                stop_set = _rows(self.X, np.sort(sub.choice(self.n_pool, size, replace=False)))
            _n_rows(stop_set, "stop_set")
            self.stop_set = stop_set
        self.uncertainty_threshold = None
        if uncertainty_method not in UNCERTAINTY_METHODS:
            raise FastalError(f"uncertainty_method must be one of "
                              f"{', '.join(UNCERTAINTY_METHODS)}; got {uncertainty_method!r}")
        self.uncertainty_method = uncertainty_method
        if uncertainty_threshold is not None:
            if isinstance(uncertainty_threshold, bool) or \
                    not isinstance(uncertainty_threshold, numbers.Real):
                raise FastalError(f"uncertainty_threshold must be a number; "
                                  f"got {uncertainty_threshold!r}")
            self.uncertainty_threshold = float(uncertainty_threshold)

    def _parse_labeled(self, labeled):
        if not isinstance(labeled, (tuple, list)) or len(labeled) != 2:
            raise FastalError("labeled must be a pair (positions, labels)")
        positions, labels = labeled
        positions = self._check_positions(positions, "labeled positions", in_batch=False)
        labels = self._check_labels(labels, positions.size)
        return positions, labels

    def _check_positions(self, positions, name, *, in_batch):
        positions = np.asarray(positions)
        if positions.ndim == 0:
            positions = positions.reshape(1)
        if positions.ndim != 1 or (positions.size and positions.dtype.kind not in "iu"):
            raise FastalError(f"{name} must be a 1-D array of integer pool positions; got "
                              f"shape {positions.shape} dtype {positions.dtype}")
        positions = positions.astype(np.int64)
        if positions.size == 0:
            return positions
        outside = (positions < 0) | (positions >= self.n_pool)
        if outside.any():
            raise FastalError(f"{name}: row {int(positions[outside][0])} is not in the pool "
                              f"(positions must be in [0, {self.n_pool}))")
        unique, counts = np.unique(positions, return_counts=True)
        if (counts > 1).any():
            raise FastalError(f"{name}: row {int(unique[counts > 1][0])} is given more than once")
        done = self._is_labeled[positions]
        if done.any():
            raise FastalError(f"{name}: row {int(positions[done][0])} is already labeled")
        if in_batch:
            foreign = ~self._pending[positions]
            if foreign.any():
                raise FastalError(f"{name}: row {int(positions[foreign][0])} is not in a batch "
                                  "handed out by this loop (label only the rows it asked for)")
        return positions

    def _check_labels(self, labels, n):
        labels = np.asarray(labels)
        if labels.ndim == 0:
            labels = labels.reshape(1)
        if labels.shape != (n,):
            raise FastalError(f"labels must have shape ({n},), one per position; got "
                              f"{labels.shape}")
        if self.classes is not None and n:
            unknown = ~np.isin(labels, self.classes)
            if unknown.any():
                raise FastalError(f"label {labels[unknown][0].item()!r} is not one of the declared "
                                  f"classes {self.classes.tolist()}")
        return labels

    def _record(self, positions, labels):
        self._positions.extend(positions.tolist())
        self._labels.extend(labels.tolist())
        self._is_labeled[positions] = True
        self._pending[positions] = False

    # ------------------------------------------------------------------ public API

    @property
    def labeled_positions(self) -> np.ndarray:
        """Pool positions of every label received, in arrival order."""
        return np.asarray(self._positions, dtype=np.int64)

    @property
    def labels(self) -> np.ndarray:
        """Every label received, aligned with :attr:`labeled_positions`."""
        return np.asarray(self._labels)

    @property
    def labeled_mask(self) -> np.ndarray:
        return self._is_labeled.copy()

    @property
    def n_labeled(self) -> int:
        return len(self._positions)

    @property
    def pending(self) -> np.ndarray:
        """Positions handed out and not yet labeled."""
        return np.flatnonzero(self._pending)

    def teach(self, positions, labels) -> None:
        """Record labels for rows of a batch the loop handed out.

        The whole call is checked before anything is recorded; once recorded, labels are
        never dropped (a later failing fit keeps them). Part of a batch may be labeled.
        """
        positions = self._check_positions(positions, "positions", in_batch=True)
        labels = self._check_labels(labels, positions.size)
        self._record(positions, labels)
        if positions.size:
            self._pending_fresh = False

    def __iter__(self):
        return self

    def __next__(self) -> Batch:
        batch = self.next_batch()
        if batch is None:
            raise StopIteration
        return batch

    def next_batch(self, k=None) -> Batch | None:
        """The next batch, or None when a stopping criterion fires (see :attr:`stopped_by`).

        ``k`` overrides ``batch_size`` for this batch; it must not exceed the remaining pool.
        """
        if self.stopped_by is not None:
            return None
        if self._pending_fresh and not self.allow_stale:
            raise FastalError(
                f"no label arrived for the last batch ({int(self._pending.sum())} rows "
                "pending): the model would be the same and the batch stale. Call "
                "teach(positions, labels) first, or pass allow_stale=True")
        out = self._is_labeled | self._pending
        remaining = int(self.n_pool - out.sum())
        if k is not None:
            k = _check_int(k, "k", 1)
            if k > remaining:
                raise FastalError(f"batch size {k} is larger than the remaining pool "
                                  f"({remaining} rows neither labeled nor handed out)")
        else:
            k = self.batch_size
        if self.n_labeled == 0 and not self._pending.any() and self.seed_size:
            return self._seed_batch(min(self.seed_size, remaining))
        if self.n_labeled == 0:
            if needs_model(self.strategy):
                raise FastalError(f"no label has been received yet and strategy "
                                  f"{self.strategy_name!r} needs a model: label the seed "
                                  "batch first")
            stats = (None, None, None, 0.0, 0.0)  # a cold start: no model to train
        else:
            stats = self._refit()  # before any stop, so the final model sees every label
        stop = self._stop(stats)
        if stop is None and remaining == 0:
            stop = "pool_exhausted"
        if stop is not None:
            self.stopped_by = stop
            return None
        if self.budget is not None:
            k = min(k, self.budget - self.n_labeled - int(self._pending.sum()))
        k = min(k, remaining)
        t0 = time.perf_counter()
        # A callable gets the embeddings when given, else the pool as the model sees it.
        features = self.embeddings if self.embeddings is not None or not callable(self.strategy) \
            else self.X
        positions = _select_batch(self.strategy, probs=self._probs, X=features,
                                  labeled_mask=out, k=k, rng=self._rng,
                                  **self.strategy_options)
        select_seconds = time.perf_counter() - t0
        self.round += 1
        self.history.append(RoundRecord(self.round, self.n_labeled, *stats,
                                        select_seconds=select_seconds, n_selected=k))
        return self._hand_out(positions, self.strategy_name)

    def fit(self):
        """Train on every label received (no-op when nothing new arrived); return the model."""
        self._refit()
        return self.model

    # ------------------------------------------------------------------ internals

    def _seed_batch(self, n):
        positions = initial_positions(self.seed_strategy, n, n_pool=self.n_pool,
                                      X=self.embeddings, rng=self._rng,
                                      metric=self.strategy_options.get("metric", "l2"))
        return self._hand_out(positions, self.seed_strategy)

    def _hand_out(self, positions, name):
        self._pending[positions] = True
        self._pending_fresh = True
        ids = None if self.ids is None else self.ids[positions]
        return Batch(positions=positions, ids=ids, round=self.round, strategy=name,
                     n_labeled=self.n_labeled)

    def _refit(self):
        """Fit on all labels if new ones arrived; returns (metric, kappa, uncertainty,
        fit_seconds, predict_seconds) of this training, recorded for the round."""
        n = self.n_labeled
        if n == self._model_n:
            return self._last_stats
        positions = self.labeled_positions
        labels = self.labels
        t0 = time.perf_counter()
        try:
            fitted = self._model.fit(_rows(self.X, positions), labels)
        except FastalError:
            raise
        except Exception as error:  # the user's code: wrap it, keep the labels
            raise FastalError(f"estimator failed to fit on {n} labeled rows: "
                              f"{type(error).__name__}: {error}") from error
        fit_seconds = time.perf_counter() - t0
        self.model = fitted
        self._model_n = n
        t0 = time.perf_counter()
        self._probs = self._model.predict_proba(fitted, self.X) \
            if needs_model(self.strategy) or self.uncertainty_threshold is not None else None
        predict_seconds = time.perf_counter() - t0
        metric = None
        if self.validation is not None:
            X_val, y_val = self.validation
            pred = self.predict(X_val)
            metric = float(np.mean(pred == y_val)) if self.metric == "accuracy" \
                else float(self.metric(y_val, pred))
        kappa = None
        if self.stop_set is not None:
            pred = self.predict(self.stop_set)
            if self._previous_stop_predictions is not None:
                kappa = cohen_kappa(self._previous_stop_predictions, pred)
                self._kappas.append(kappa)
            self._previous_stop_predictions = pred
        uncertainty = None
        if self._probs is not None and self._probs.shape[1] >= 2:
            unlabeled = ~self._is_labeled
            if unlabeled.any():
                uncertainty = float(np.mean(score(self._probs[unlabeled],
                                                  self.uncertainty_method)))
        self._last_stats = (metric, kappa, uncertainty, fit_seconds, predict_seconds)
        return self._last_stats

    def predict(self, X):
        """Class predictions of the current model (argmax of its probabilities)."""
        if self.model is None:
            raise FastalError("no model has been trained yet: label a batch first")
        probs = self._model.predict_proba(self.model, X)
        classes = _Model.classes(self.model, self.classes, self.labels)
        if classes.size != probs.shape[1]:
            raise FastalError(f"predict_proba returned {probs.shape[1]} columns but the model "
                              f"knows {classes.size} classes; declare classes= in the order of "
                              "its columns")
        return classes[np.argmax(probs, axis=1)]

    def _stop(self, stats):
        """The first stopping criterion that holds, or None."""
        if self.budget is not None and self.n_labeled + int(self._pending.sum()) >= self.budget:
            return "budget"
        if self.max_rounds is not None and self.round >= self.max_rounds:
            return "max_rounds"
        metric, _, uncertainty, _, _ = stats
        if self.target is not None and metric is not None and metric >= self.target:
            return "target"
        if self.kappa_threshold is not None and len(self._kappas) >= self.kappa_window:
            if float(np.mean(self._kappas[-self.kappa_window:])) >= self.kappa_threshold:
                return "stable_predictions"
        if self.uncertainty_threshold is not None and uncertainty is not None \
                and uncertainty < self.uncertainty_threshold:
            return "low_uncertainty"
        return None


# --------------------------------------------------------------------------- simulation


def labels_saved(label_counts, curves, budgets, *, baseline="random"):
    """Labels each strategy needs to reach the baseline's accuracy at each budget.

    Parameters
    ----------
    label_counts : array (T,)
        Increasing label counts at which the curves are measured.
    curves : dict name -> array (T,)
        Mean accuracy of each strategy (must include ``baseline``).
    budgets : sequence of int
        Label counts at which the baseline's accuracy is the target (interpolated linearly
        on the baseline's curve; must lie within ``label_counts``).

    Returns
    -------
    SavingsTable

    Notes
    -----
    The target is ``a = random(b)``; a strategy needs ``n*`` labels, the first crossing of
    ``a`` by its piecewise-linear mean curve (``label_counts[0]`` if it starts above ``a``).
    Saved = ``100 * (b - n*) / b`` percent; negative when it needs more than random. A
    strategy that never reaches ``a`` within the curve gets NaN ("not reached").
    """
    counts = np.asarray(label_counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size < 1 or np.any(np.diff(counts) <= 0):
        raise FastalError("label_counts must be a 1-D strictly increasing array")
    if baseline not in curves:
        raise FastalError(f"curves must include the baseline {baseline!r}; got "
                          f"{', '.join(curves)}")
    budgets = tuple(int(b) for b in budgets)
    for b in budgets:
        if not counts[0] <= b <= counts[-1]:
            raise FastalError(f"budget {b} is outside the measured label counts "
                              f"[{int(counts[0])}, {int(counts[-1])}]")
    names = tuple(curves)
    targets = np.array([np.interp(b, counts, np.asarray(curves[baseline], dtype=np.float64))
                        for b in budgets])
    needed = np.full((len(names), len(budgets)), np.nan)
    for i, name in enumerate(names):
        acc = np.asarray(curves[name], dtype=np.float64)
        if acc.shape != counts.shape:
            raise FastalError(f"curve {name!r} has shape {acc.shape}; expected {counts.shape}")
        for j, a in enumerate(targets):
            hit = np.flatnonzero(acc >= a - 1e-12)
            if hit.size == 0:
                continue
            t = int(hit[0])
            if t == 0:
                needed[i, j] = counts[0]
            else:
                lo, hi = acc[t - 1], acc[t]
                needed[i, j] = counts[t - 1] + (a - lo) / (hi - lo) * (counts[t] - counts[t - 1])
    saved = 100.0 * (np.asarray(budgets, dtype=np.float64) - needed) / np.asarray(budgets)
    return SavingsTable(strategies=names, budgets=budgets, baseline=baseline,
                        target_accuracy=targets, labels_needed=needed, saved_percent=saved)


@dataclass(frozen=True)
class SavingsTable:
    """Labels needed to match the baseline's accuracy at each budget (see :func:`labels_saved`).

    ``labels_needed`` and ``saved_percent`` have shape (strategies, budgets); NaN means the
    strategy never reached the target ("not reached").
    """

    strategies: tuple
    budgets: tuple
    baseline: str
    target_accuracy: np.ndarray
    labels_needed: np.ndarray
    saved_percent: np.ndarray

    def to_markdown(self) -> str:
        head = ["strategy"]
        for b, a in zip(self.budgets, self.target_accuracy):
            head += [f"labels to reach {self.baseline}@{b} ({a:.4f})", f"saved @{b}"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for i, name in enumerate(self.strategies):
            cells = [name]
            for j in range(len(self.budgets)):
                n = self.labels_needed[i, j]
                if np.isnan(n):
                    cells += ["not reached", "not reached"]
                else:
                    cells += [f"{n:.0f}", f"{self.saved_percent[i, j]:+.1f} %"]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_markdown()


@dataclass(frozen=True)
class SimulationResult:
    """Learning curves of several strategies on the same data, seeds and seed sets.

    Attributes
    ----------
    strategies : tuple of str
    label_counts : ndarray of int64 (T,)
        Labels used by the model at each point of the curves.
    accuracy : ndarray (S, R, T)
        Test accuracy per strategy, repeat and point.
    fit_seconds, predict_seconds, select_seconds : ndarray (S, R, T)
        The user's training, pool prediction, and fastal's selection time of the round that
        starts at each point (selection is 0 at the last point, where nothing is selected).
    params : dict
        seed_size, batch_size, budget, repeats, seed, seed_strategy, n_pool, n_test.
    """

    strategies: tuple
    label_counts: np.ndarray
    accuracy: np.ndarray
    fit_seconds: np.ndarray
    predict_seconds: np.ndarray
    select_seconds: np.ndarray
    params: dict = field(default_factory=dict)

    @property
    def mean(self) -> np.ndarray:
        """Mean test accuracy over repeats, shape (S, T)."""
        return self.accuracy.mean(axis=1)

    @property
    def std(self) -> np.ndarray:
        """Standard deviation over repeats (ddof=0), shape (S, T)."""
        return self.accuracy.std(axis=1)

    def curve(self, strategy):
        """(label_counts, mean, std) of one strategy."""
        i = self._index(strategy)
        return self.label_counts, self.mean[i], self.std[i]

    def _index(self, strategy):
        if strategy not in self.strategies:
            raise FastalError(f"strategy {strategy!r} was not simulated; have "
                              f"{', '.join(self.strategies)}")
        return self.strategies.index(strategy)

    def labels_saved_table(self, budgets=(1000, 2000), baseline="random") -> SavingsTable:
        """See :func:`labels_saved`; computed on the mean curves."""
        curves = {name: self.mean[i] for i, name in enumerate(self.strategies)}
        return labels_saved(self.label_counts, curves, budgets, baseline=baseline)

    def timing(self):
        """Mean seconds per round for each strategy: dict name -> (select, fit, predict).

        Means are over rounds that selected a batch (every point but the last).
        """
        out = {}
        for i, name in enumerate(self.strategies):
            sl = np.s_[i, :, :-1]
            out[name] = (float(self.select_seconds[sl].mean()), float(self.fit_seconds[sl].mean()),
                         float(self.predict_seconds[sl].mean()))
        return out

    def to_table(self, raw=False):
        """The curves as a ``pyarrow.Table``: per (strategy, labels) mean/std, or, with
        ``raw=True``, one row per (strategy, repeat, labels) with the timings."""
        import pyarrow as pa

        S, R, T = self.accuracy.shape
        if raw:
            s, r, t = np.meshgrid(np.arange(S), np.arange(R), np.arange(T), indexing="ij")
            s, r, t = s.ravel(), r.ravel(), t.ravel()
            return pa.table({
                "strategy": pa.array([self.strategies[i] for i in s]),
                "repeat": pa.array(r.astype(np.int64)),
                "labels": pa.array(self.label_counts[t]),
                "accuracy": pa.array(self.accuracy.ravel()),
                "fit_seconds": pa.array(self.fit_seconds.ravel()),
                "predict_seconds": pa.array(self.predict_seconds.ravel()),
                "select_seconds": pa.array(self.select_seconds.ravel()),
            })
        s, t = np.meshgrid(np.arange(S), np.arange(T), indexing="ij")
        s, t = s.ravel(), t.ravel()
        return pa.table({
            "strategy": pa.array([self.strategies[i] for i in s]),
            "labels": pa.array(self.label_counts[t]),
            "mean_accuracy": pa.array(self.mean.ravel()),
            "std_accuracy": pa.array(self.std.ravel()),
            "repeats": pa.array(np.full(S * T, R, dtype=np.int64)),
        })

    def to_csv(self, path, raw=False):
        """Write :meth:`to_table` as CSV; returns the path."""
        import pyarrow.csv as pacsv

        pacsv.write_csv(self.to_table(raw=raw), str(path))
        return path

    def to_parquet(self, path, raw=False):
        """Write :meth:`to_table` as Parquet; returns the path."""
        import pyarrow.parquet as pq

        pq.write_table(self.to_table(raw=raw), str(path))
        return path

    def plot(self, path, *, title=None):
        """Learning curves (mean +/- std) as a PNG; needs matplotlib. Returns the path."""
        from .report import plot_learning_curves

        return plot_learning_curves(self, path, title=title)


def simulate(X, y, X_test, y_test, estimator, strategies=("random", DEFAULT_STRATEGY), *,
             seed_size=100, batch_size=100, budget=1000, repeats=3, seed=0,
             seed_strategy="stratified", embeddings=None, strategy_options=None,
             progress=True) -> SimulationResult:
    """Replay active learning on a labeled pool and measure test accuracy per label count.

    For each repeat ``r`` one seed set is drawn (``seed_strategy``, from the repeat's own
    seed) and shared by every strategy, and each strategy's loop gets the same seed: the
    comparison between strategies is paired.

    Parameters
    ----------
    X, y : pool features (N, ...) and its labels (revealed only when a row is picked)
    X_test, y_test : held-out rows for the accuracy curves
    estimator : estimator or (train, predict_proba)
        As in :class:`ActiveLoop`.
    strategies : sequence of str or callables
        Include ``"random"`` to get :meth:`SimulationResult.labels_saved_table`.
    seed_size, batch_size, budget : int
        Curves are measured at ``seed_size, seed_size + batch_size, ..., budget``.
    repeats : int
    seed : int
        Repeat ``r`` uses the r-th child of ``numpy.random.SeedSequence(seed)``.
    seed_strategy : {"stratified", "random", "kcenter"}
    embeddings : ndarray (N, d), optional
        Features for the k-center strategies (default ``X``).
    strategy_options : dict, optional
        Passed to every strategy (``beta``, ``metric``).
    progress : bool, default True
        A progress bar on stderr, one step per round.

    Returns
    -------
    SimulationResult
    """
    n_pool = _n_rows(X, "X")
    y = np.asarray(y)
    y_test = np.asarray(y_test)
    if y.shape != (n_pool,):
        raise FastalError(f"y must have shape ({n_pool},) (one label per pool row); "
                          f"got {y.shape}")
    if _n_rows(X_test, "X_test") != y_test.shape[0]:
        raise FastalError(f"X_test has {_n_rows(X_test, 'X_test')} rows but y_test has "
                          f"{y_test.shape[0]}")
    strategies = tuple(_check_strategy(s, "strategies item") for s in strategies)
    if not strategies:
        raise FastalError("strategies must name at least one strategy")
    names = tuple(_strategy_name(s) for s in strategies)
    if len(set(names)) != len(names):
        raise FastalError(f"strategies must be distinct; got {names}")
    seed_size = _check_int(seed_size, "seed_size", 1, n_pool)
    batch_size = _check_int(batch_size, "batch_size", 1)
    budget = _check_int(budget, "budget", seed_size, n_pool)
    repeats = _check_int(repeats, "repeats", 1)
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise FastalError(f"seed must be a non-negative int; got {seed!r}")
    counts = np.append(np.arange(seed_size, budget, batch_size), budget).astype(np.int64)
    counts = np.unique(counts)
    if embeddings is None and any(_needs_embeddings(s) for s in strategies) \
            or seed_strategy == "kcenter" and embeddings is None:
        embeddings = _dense_embeddings(X, "X")
    classes = np.unique(y)

    S, R, T = len(strategies), repeats, counts.size
    accuracy = np.full((S, R, T), np.nan)
    fit_s = np.zeros((S, R, T))
    predict_s = np.zeros((S, R, T))
    select_s = np.zeros((S, R, T))
    children = np.random.SeedSequence(seed).spawn(repeats)

    from tqdm.auto import tqdm

    with tqdm(total=S * R * T, disable=not progress, desc="simulate", unit="round",
              file=sys.stderr, leave=False) as bar:
        for r in range(R):
            repeat_seed = int(children[r].generate_state(1)[0])
            seed_rng = np.random.default_rng(children[r])
            initial = initial_positions(seed_strategy, seed_size, n_pool=n_pool,
                                        X=embeddings, y=y, rng=seed_rng)
            for s, strategy in enumerate(strategies):
                bar.set_postfix_str(f"{names[s]} repeat {r + 1}/{R}")
                loop = ActiveLoop(estimator, X, strategy=strategy, batch_size=batch_size,
                                  labeled=(initial, y[initial]), classes=classes,
                                  embeddings=embeddings, strategy_options=strategy_options,
                                  budget=budget, validation=(X_test, y_test),
                                  seed=repeat_seed)
                for batch in loop:
                    loop.teach(batch.positions, y[batch.positions])
                    bar.update(1)
                bar.update(1)
                for record in loop.history:
                    t = int(np.searchsorted(counts, record.n_labeled))
                    accuracy[s, r, t] = record.metric
                    fit_s[s, r, t] = record.fit_seconds
                    predict_s[s, r, t] = record.predict_seconds
                    select_s[s, r, t] = record.select_seconds
                # The final model (trained when the budget stopped the loop).
                metric, _, _, fit_seconds, predict_seconds = loop._last_stats
                accuracy[s, r, T - 1] = metric
                fit_s[s, r, T - 1] = fit_seconds
                predict_s[s, r, T - 1] = predict_seconds
    params = dict(seed_size=seed_size, batch_size=batch_size, budget=budget, repeats=repeats,
                  seed=seed, seed_strategy=seed_strategy, n_pool=n_pool,
                  n_test=int(y_test.shape[0]))
    return SimulationResult(strategies=names, label_counts=counts, accuracy=accuracy,
                            fit_seconds=fit_s, predict_seconds=predict_s,
                            select_seconds=select_s, params=params)
