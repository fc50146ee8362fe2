"""Replaying active learning on labeled data: learning curves of several strategies, paired."""

from __future__ import annotations

import numbers
import sys
from dataclasses import dataclass, field

import numpy as np

from .._errors import FastalError
from ._common import (DEFAULT_STRATEGY, _check_int, _check_strategy, _dense_embeddings,
                      _n_rows, _needs_embeddings, _strategy_name)
from .batches import initial_positions
from .loop import ActiveLoop
from .savings import SavingsTable, labels_saved


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
        from ..report import plot_learning_curves

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
