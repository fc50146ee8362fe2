"""Replaying active learning on labeled data: learning curves of several strategies, paired."""

from __future__ import annotations

import numbers
import sys
from dataclasses import dataclass, field

import numpy as np

from .._errors import ArgumentError, DataError
from ._common import (DEFAULT_STRATEGY, _check_int, _check_strategy, _dense_embeddings,
                      _n_rows, _needs_embeddings, _rows, _strategy_name)
from .batches import initial_positions
from .loop import ActiveLoop
from .savings import AulcTable, SavingsTable, aulc, labels_saved
from .stopping import stopping_points


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
        seed_size, batch_size, budget, repeats, seed, seed_strategy, n_pool, n_test,
        cost_per_label, seconds_per_label.
    metrics : dict name -> ndarray (S, R, T)
        Further test metrics (e.g. ``"macro_f1"``) measured on the same models.
    kappa : ndarray (S, R, T) or None
        Cohen's kappa between the predictions of successive models on a stop set of
        unlabeled pool rows (NaN at the first model), for stopping rules.
    uncertainty : ndarray (S, R, T) or None
        Mean least-confidence score of the unlabeled pool under each model (NaN where the
        strategy reads no probabilities, e.g. random).
    scored_fraction : ndarray (S, R, T) or None
        Share of the pool the strategy needed the model's probabilities for in the round
        that starts at each point: 1 for the full pool, smaller with candidate pools
        (``candidates="knn"``).
    """

    strategies: tuple
    label_counts: np.ndarray
    accuracy: np.ndarray
    fit_seconds: np.ndarray
    predict_seconds: np.ndarray
    select_seconds: np.ndarray
    params: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    kappa: np.ndarray | None = None
    uncertainty: np.ndarray | None = None
    scored_fraction: np.ndarray | None = None

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
            raise ArgumentError(f"strategy {strategy!r} was not simulated; have "
                                f"{', '.join(self.strategies)}")
        return self.strategies.index(strategy)

    def values(self, metric="accuracy") -> np.ndarray:
        """The (S, R, T) curves of ``metric``: "accuracy" or a name in :attr:`metrics`."""
        if metric == "accuracy":
            return self.accuracy
        if metric not in self.metrics:
            raise ArgumentError(f"metric must be 'accuracy' or one of the measured metrics "
                                f"({', '.join(self.metrics) or 'none'}); got {metric!r}")
        return self.metrics[metric]

    def labels_saved_table(self, budgets=(1000, 2000), baseline="random",
                           metric="accuracy") -> SavingsTable:
        """See :func:`labels_saved`; computed on the mean curves of ``metric``, with the
        money and annotator time of the simulation's ``cost_per_label`` and
        ``seconds_per_label``."""
        means = self.values(metric).mean(axis=1)
        curves = {name: means[i] for i, name in enumerate(self.strategies)}
        return labels_saved(self.label_counts, curves, budgets, baseline=baseline,
                            cost_per_label=self.params.get("cost_per_label"),
                            seconds_per_label=self.params.get("seconds_per_label"),
                            metric=metric)

    def aulc_table(self, baseline="random", metric="accuracy") -> AulcTable:
        """Area under each repeat's learning curve (see :func:`fastal.loop.savings.aulc`),
        with standard errors and the paired difference to ``baseline``."""
        self._index(baseline)
        return AulcTable(self.strategies, baseline, aulc(self.label_counts, self.values(metric)),
                         metric=metric)

    def recommendation(self, baseline="random", noise=2.0, metric="accuracy"):
        """``(strategy, sentence)``: the strategy with the largest AULC gain over
        ``baseline`` when that gain exceeds ``noise`` paired standard errors, else
        ``(baseline, ...)`` recommending the baseline (active learning adds complexity and
        buys nothing measurable on this data)."""
        table = self.aulc_table(baseline, metric)
        base = self.strategies.index(baseline)
        best, best_gain = None, -np.inf
        for i, name in enumerate(self.strategies):
            if i == base:
                continue
            d, se = table.diff[i], table.diff_se[i]
            # With one repeat there is no standard error: nothing is beyond the noise.
            if np.isfinite(se) and d > noise * se and d > 0 and d > best_gain:
                best, best_gain = name, d
        repeats = table.per_repeat.shape[1]
        if best is None:
            return baseline, (
                f"No strategy beat {baseline} sampling by more than {noise:g} standard errors "
                f"of the paired AULC difference ({repeats} repeats): use {baseline} sampling "
                "here; active learning would add complexity without a measurable saving "
                "(labels may be plentiful for this model, or the model saturated).")
        i = self.strategies.index(best)
        return best, (
            f"{best} beat {baseline} sampling: AULC {table.mean[i]:.4f} vs "
            f"{table.mean[base]:.4f} ({table.diff[i]:+.4f} ± {table.diff_se[i]:.4f} paired SE, "
            f"{repeats} repeats).")

    def report(self, budgets=None, baseline="random", metric="accuracy") -> str:
        """The savings table (labels, money, annotator-hours), the AULC table and the
        recommendation, as Markdown. ``budgets`` default to half the budget and the budget."""
        if budgets is None:
            budgets = self.default_budgets()
        table = self.labels_saved_table(budgets, baseline, metric)
        parts = [table.to_markdown(), "", self.aulc_table(baseline, metric).to_markdown(), ""]
        parts += [f"- {line}" for line in table.sentences()]
        parts += ["", self.recommendation(baseline, metric=metric)[1]]
        return "\n".join(parts)

    def stopping(self, strategy, metric="accuracy", **rules):
        """Where each stopping rule would have stopped ``strategy``'s runs (see
        :func:`fastal.loop.stopping_points`; ``rules`` are its threshold arguments)."""
        i = self._index(strategy)
        return stopping_points(self.label_counts, self.values(metric)[i],
                               None if self.kappa is None else self.kappa[i],
                               None if self.uncertainty is None else self.uncertainty[i],
                               **rules)

    def default_budgets(self):
        """Two label counts to read savings at: the middle of the curves and their end."""
        counts = self.label_counts
        middle = int(counts[0] + (counts[-1] - counts[0]) // 2)
        return (middle, int(counts[-1])) if middle > counts[0] else (int(counts[-1]),)

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
                **{name: pa.array(v.ravel()) for name, v in self.metrics.items()},
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


#: Test metrics :func:`simulate` can measure besides accuracy (name -> f(y_true, y_pred)).
def _macro_f1(y_true, y_pred):
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


def _balanced_accuracy(y_true, y_pred):
    from sklearn.metrics import balanced_accuracy_score

    return float(balanced_accuracy_score(y_true, y_pred))


METRICS = {"macro_f1": _macro_f1, "balanced_accuracy": _balanced_accuracy}


def _missing_labels(labels):
    """Positions of NaN or None labels (a label column read with gaps)."""
    if labels.dtype.kind == "f":
        return np.flatnonzero(np.isnan(labels.ravel()))
    if labels.dtype == object:
        return np.flatnonzero([v is None or (isinstance(v, float) and v != v)
                               for v in labels.ravel()])
    return np.empty(0, dtype=np.int64)


def simulate(X, y, X_test, y_test, estimator, strategies=("random", DEFAULT_STRATEGY), *,
             seed_size=100, batch_size=100, budget=1000, repeats=3, seed=0,
             seed_strategy="stratified", embeddings=None, strategy_options=None,
             metrics=(), stop_set_size=1000, cost_per_label=None, seconds_per_label=None,
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
    seed_strategy : {"stratified", "random", "kcenter", "typiclust"}
    embeddings : ndarray (N, d), optional
        Features for the k-center strategies (default ``X``).
    strategy_options : dict, optional
        Passed to every strategy (``beta``, ``metric``, ``candidates``, ``knn``).
    metrics : sequence of str, default ()
        Test metrics measured besides accuracy: ``"macro_f1"``, ``"balanced_accuracy"``
        (in :attr:`SimulationResult.metrics`).
    stop_set_size : int, default 1000
        Unlabeled pool rows (drawn once per repeat, from their own stream) on which
        successive models' predictions are compared, for the stabilising-predictions
        stopping rule (:attr:`SimulationResult.kappa`); 0 records no kappa.
    cost_per_label, seconds_per_label : float, optional
        Price and annotator time of one label: the savings tables and report then say how
        much money and how many annotator-hours each strategy saves against random.
    progress : bool, default True
        A progress bar on stderr, one step per round.

    Returns
    -------
    SimulationResult

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from fastal.datasets import load_digits
    >>> from fastal.loop import simulate
    >>> X, y = load_digits(scale=True)
    >>> result = simulate(X[:1000], y[:1000], X[1000:], y[1000:], LogisticRegression(),
    ...                   seed_size=20, batch_size=20, budget=200, repeats=2,
    ...                   cost_per_label=2.5, seconds_per_label=30, progress=False)
    >>> print(result.report())                               # doctest: +SKIP
    """
    n_pool = _n_rows(X, "X")
    y = np.asarray(y)
    y_test = np.asarray(y_test)
    if y.shape != (n_pool,):
        raise DataError(f"y must have shape ({n_pool},) (one label per pool row); "
                        f"got {y.shape}")
    for name, labels in (("y", y), ("y_test", y_test)):
        missing = _missing_labels(labels)
        if missing.size:
            raise DataError(f"{name} must hold a label for every row; row {int(missing[0])} is "
                            f"{labels[missing[0]]}")
    if _n_rows(X_test, "X_test") != y_test.shape[0]:
        raise DataError(f"X_test has {_n_rows(X_test, 'X_test')} rows but y_test has "
                        f"{y_test.shape[0]}")
    strategies = tuple(_check_strategy(s, "strategies item") for s in strategies)
    if not strategies:
        raise ArgumentError("strategies must name at least one strategy; got an empty sequence")
    names = tuple(_strategy_name(s) for s in strategies)
    if len(set(names)) != len(names):
        raise ArgumentError(f"strategies must be distinct; got {names}")
    seed_size = _check_int(seed_size, "seed_size", 1, n_pool)
    batch_size = _check_int(batch_size, "batch_size", 1)
    budget = _check_int(budget, "budget", seed_size, n_pool)
    repeats = _check_int(repeats, "repeats", 1)
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise ArgumentError(f"seed must be a non-negative int; got {seed!r}")
    if isinstance(metrics, str):
        metrics = (metrics,)
    metric_names = tuple(m for m in metrics if m != "accuracy")
    for m in metric_names:
        if m not in METRICS:
            raise ArgumentError(f"metrics items must be 'accuracy' or one of "
                                f"{', '.join(METRICS)}; got {m!r}")
    stop_set_size = _check_int(stop_set_size, "stop_set_size", 0)
    # Checked here so that a bad price fails before hours of simulation.
    labels_saved([0, 1], {"random": [0, 1]}, (), cost_per_label=cost_per_label,
                 seconds_per_label=seconds_per_label)
    counts = np.append(np.arange(seed_size, budget, batch_size), budget).astype(np.int64)
    counts = np.unique(counts)
    if embeddings is None and any(_needs_embeddings(s) for s in strategies) \
            or seed_strategy in ("kcenter", "typiclust") and embeddings is None:
        embeddings = _dense_embeddings(X, "X")
    classes = np.unique(y)

    S, R, T = len(strategies), repeats, counts.size
    accuracy = np.full((S, R, T), np.nan)
    extra = {m: np.full((S, R, T), np.nan) for m in metric_names}
    kappa = np.full((S, R, T), np.nan)
    uncertainty = np.full((S, R, T), np.nan)
    scored = np.full((S, R, T), np.nan)
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
            stop_set = None
            if stop_set_size:
                # Its own stream: the stop set never shifts the seed set or the batches.
                stop_rng = np.random.default_rng(children[r].spawn(1)[0])
                size = min(stop_set_size, n_pool)
                stop_set = _rows(X, np.sort(stop_rng.choice(n_pool, size, replace=False)))
            for s, strategy in enumerate(strategies):
                bar.set_postfix_str(f"{names[s]} repeat {r + 1}/{R}")
                measured = {}  # labels -> {metric: value}, filled as the loop retrains
                current = []

                def record(y_true, y_pred, measured=measured, current=current):
                    values = {m: METRICS[m](y_true, y_pred) for m in metric_names}
                    measured[current[0].n_labeled] = values
                    return float(np.mean(y_true == y_pred))

                loop = ActiveLoop(estimator, X, strategy=strategy, batch_size=batch_size,
                                  labeled=(initial, y[initial]), classes=classes,
                                  embeddings=embeddings, strategy_options=strategy_options,
                                  budget=budget, validation=(X_test, y_test),
                                  metric=record if metric_names else "accuracy",
                                  stop_set=stop_set, seed=repeat_seed)
                current.append(loop)
                for batch in loop:
                    loop.teach(batch.positions, y[batch.positions])
                    bar.update(1)
                bar.update(1)
                for record_ in loop.history:
                    t = int(np.searchsorted(counts, record_.n_labeled))
                    accuracy[s, r, t] = record_.metric
                    fit_s[s, r, t] = record_.fit_seconds
                    predict_s[s, r, t] = record_.predict_seconds
                    select_s[s, r, t] = record_.select_seconds
                    kappa[s, r, t] = _nan(record_.kappa)
                    uncertainty[s, r, t] = _nan(record_.uncertainty)
                    scored[s, r, t] = record_.n_scored / n_pool
                # The final model (trained when the budget stopped the loop).
                metric, final_kappa, final_unc, fit_seconds, predict_seconds = loop._last_stats
                accuracy[s, r, T - 1] = metric
                fit_s[s, r, T - 1] = fit_seconds
                predict_s[s, r, T - 1] = predict_seconds
                kappa[s, r, T - 1] = _nan(final_kappa)
                uncertainty[s, r, T - 1] = _nan(final_unc)
                for n_labeled, values in measured.items():
                    t = int(np.searchsorted(counts, n_labeled))
                    for m, v in values.items():
                        extra[m][s, r, t] = v
    params = dict(seed_size=seed_size, batch_size=batch_size, budget=budget, repeats=repeats,
                  seed=seed, seed_strategy=seed_strategy, n_pool=n_pool,
                  n_test=int(y_test.shape[0]), cost_per_label=cost_per_label,
                  seconds_per_label=seconds_per_label, stop_set_size=stop_set_size)
    return SimulationResult(strategies=names, label_counts=counts, accuracy=accuracy,
                            fit_seconds=fit_s, predict_seconds=predict_s,
                            select_seconds=select_s, params=params, metrics=extra,
                            kappa=kappa if stop_set_size else None, uncertainty=uncertainty,
                            scored_fraction=scored)


def _nan(value):
    return np.nan if value is None else float(value)
