"""The active-learning loop for a human annotating: batches out, labels in, retrain, repeat.

fastal never trains anything: the model is the user's, either a scikit-learn style
estimator (``fit`` / ``predict_proba``, cloned for every round) or a pair of callables
``train(X, y) -> model`` and ``predict_proba(model, X) -> probs``. fastal decides which rows
to ask about, records every label it is told, and says when to stop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .._errors import ArgumentError, DataError, FastalError
from ..scoring import score
from ._common import (DEFAULT_STRATEGY, _check_int, _check_strategy, _dense_embeddings,
                      _n_rows, _needs_embeddings, _rng, _rows, _strategy_name, needs_model)
from .batches import _select_batch, initial_positions
from .model import _Model
from .stopping import _StoppingRules, cohen_kappa


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
    (``predict_seconds``) and of fastal's selection (``select_seconds``); ``n_scored`` the
    pool rows whose probabilities the strategy needed (fewer than the pool with
    ``candidates="knn"``, 0 for model-free strategies).
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
    n_scored: int = 0


class ActiveLoop(_StoppingRules):
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
    strategy : str or callable, default "auto"
        See :data:`STRATEGIES`; a callable ``strategy(probs, X, labeled_mask, k, rng)``.
    batch_size : int, default 100
        Rows per batch (the last batch is cut to the budget or the remaining pool).
    labeled : (positions, labels), optional
        Labels known before the loop starts (recorded as round 0, not asked).
    seed_size : int, default 0
        Size of a seed batch chosen without a model, when ``labeled`` is not given.
    seed_strategy : {"random", "kcenter", "typiclust"}, default "random"
        How the seed batch is chosen ("kcenter", "typiclust": cold starts on ``embeddings``).
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
        1,000 pool rows drawn with ``seed`` when ``kappa_threshold`` is given). Given without
        ``kappa_threshold``, the kappas are recorded in :attr:`history` but stop nothing.
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
            raise DataError("X has no rows: the pool is empty")
        self.strategy = _check_strategy(strategy)
        self.strategy_name = _strategy_name(self.strategy)
        if strategy_options is not None and not isinstance(strategy_options, dict):
            raise ArgumentError(f"strategy_options must be a dict (option: value) or None; "
                                f"got {strategy_options!r}")
        self.strategy_options = dict(strategy_options or {})
        self.batch_size = _check_int(batch_size, "batch_size", 1)
        self._rng = _rng(seed)
        self.classes = None if classes is None else np.unique(np.asarray(classes))
        self.ids = None if ids is None else np.asarray(ids)
        if self.ids is not None and self.ids.shape != (self.n_pool,):
            raise DataError(f"ids must have shape ({self.n_pool},) (one per pool row); "
                            f"got {self.ids.shape}")
        if embeddings is None and (_needs_embeddings(self.strategy)
                                   or seed_strategy in ("kcenter", "typiclust")):
            embeddings = _dense_embeddings(X, "X")
        if embeddings is None and self.strategy == "auto" and isinstance(X, np.ndarray):
            embeddings = X  # auto uses them when they help, and runs without them
        if embeddings is not None:
            embeddings = np.asarray(embeddings)
            if embeddings.ndim != 2 or embeddings.shape[0] != self.n_pool:
                raise DataError(f"embeddings must have shape ({self.n_pool}, d); "
                                f"got {embeddings.shape}")
        self.embeddings = embeddings
        if isinstance(self.strategy_options.get("candidates"), str) \
                and self.strategy_options["candidates"] == "knn":
            # SEALS: one neighbour index for the whole loop, searched only for new labels.
            from ..diversity.seals import KnnCandidates

            source = embeddings if embeddings is not None else _dense_embeddings(X, "X")
            self.strategy_options["candidates"] = KnnCandidates(
                source, self.strategy_options.pop("knn", 100),
                self.strategy_options.get("metric", "l2"))
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
            if seed_strategy not in ("random", "kcenter", "typiclust"):
                raise ArgumentError("seed_strategy must be 'random', 'kcenter' or 'typiclust' in "
                                    "a loop without known labels (stratified needs labels: pass "
                                    f"labeled=(positions, labels)); got {seed_strategy!r}")
        if labeled is None and self.seed_size == 0 and needs_model(self.strategy):
            raise ArgumentError(f"the seed set is empty and strategy {self.strategy_name!r} "
                                "needs a model: pass seed_size > 0 (or labeled=(positions, "
                                "labels)), or use a model-free strategy (random, kcenter)")
        if self.batch_size > available:
            raise ArgumentError(f"batch_size={self.batch_size} is larger than the remaining pool "
                                f"({available} unlabeled rows)")

    def _parse_labeled(self, labeled):
        if not isinstance(labeled, (tuple, list)) or len(labeled) != 2:
            given = type(labeled).__name__
            if isinstance(labeled, (tuple, list)):
                given += f" of length {len(labeled)}"
            raise ArgumentError(f"labeled must be a pair (positions, labels); got {given}")
        positions, labels = labeled
        positions = self._check_positions(positions, "labeled positions", in_batch=False)
        labels = self._check_labels(labels, positions.size)
        return positions, labels

    def _check_positions(self, positions, name, *, in_batch):
        positions = np.asarray(positions)
        if positions.ndim == 0:
            positions = positions.reshape(1)
        if positions.ndim != 1 or (positions.size and positions.dtype.kind not in "iu"):
            raise DataError(f"{name} must be a 1-D array of integer pool positions; got "
                            f"shape {positions.shape} dtype {positions.dtype}")
        positions = positions.astype(np.int64)
        if positions.size == 0:
            return positions
        outside = (positions < 0) | (positions >= self.n_pool)
        if outside.any():
            raise DataError(f"{name}: row {int(positions[outside][0])} is not in the pool "
                            f"(positions must be in [0, {self.n_pool}))")
        unique, counts = np.unique(positions, return_counts=True)
        if (counts > 1).any():
            raise DataError(f"{name}: row {int(unique[counts > 1][0])} is given more than once")
        done = self._is_labeled[positions]
        if done.any():
            raise DataError(f"{name}: row {int(positions[done][0])} is already labeled")
        if in_batch:
            foreign = ~self._pending[positions]
            if foreign.any():
                raise DataError(f"{name}: row {int(positions[foreign][0])} is not in a batch "
                                "handed out by this loop (label only the rows it asked for)")
        return positions

    def _check_labels(self, labels, n):
        labels = np.asarray(labels)
        if labels.ndim == 0:
            labels = labels.reshape(1)
        if labels.shape != (n,):
            raise DataError(f"labels must have shape ({n},), one per position; got "
                            f"{labels.shape}")
        if self.classes is not None and n:
            unknown = ~np.isin(labels, self.classes)
            if unknown.any():
                raise DataError(f"label {labels[unknown][0].item()!r} is not one of the declared "
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
            raise ArgumentError(
                f"no label arrived for the last batch ({int(self._pending.sum())} rows "
                "pending): the model would be the same and the batch stale. Call "
                "teach(positions, labels) first, or pass allow_stale=True")
        out = self._is_labeled | self._pending
        remaining = int(self.n_pool - out.sum())
        if k is not None:
            k = _check_int(k, "k", 1)
            if k > remaining:
                raise ArgumentError(f"batch size {k} is larger than the remaining pool "
                                    f"({remaining} rows neither labeled nor handed out)")
        else:
            k = self.batch_size
        if self.n_labeled == 0 and not self._pending.any() and self.seed_size:
            return self._seed_batch(min(self.seed_size, remaining))
        if self.n_labeled == 0:
            if needs_model(self.strategy):
                raise ArgumentError(f"no label has been received yet and strategy "
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
        info = {}
        positions = _select_batch(self.strategy, probs=self._probs, X=features,
                                  labeled_mask=out, k=k, rng=self._rng, info=info,
                                  **self.strategy_options)
        select_seconds = time.perf_counter() - t0
        self.round += 1
        self.history.append(RoundRecord(self.round, self.n_labeled, *stats,
                                        select_seconds=select_seconds, n_selected=k,
                                        n_scored=int(info.get("n_scored", 0))))
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
            raise DataError(f"estimator failed to fit on {n} labeled rows: "
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
            raise ArgumentError("no model has been trained yet: label a batch first")
        probs = self._model.predict_proba(self.model, X)
        classes = _Model.classes(self.model, self.classes, self.labels)
        if classes.size != probs.shape[1]:
            raise DataError(f"predict_proba returned {probs.shape[1]} columns but the model "
                            f"knows {classes.size} classes; declare classes= in the order of "
                            "its columns")
        return classes[np.argmax(probs, axis=1)]
