"""Labels saved against a baseline, in labels, money and annotator time; the area under the
learning curve with its standard error."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .._errors import ArgumentError, DataError


def labels_saved(label_counts, curves, budgets, *, baseline="random", cost_per_label=None,
                 seconds_per_label=None, metric="accuracy"):
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
    baseline : str, default "random"
    cost_per_label : float, optional
        Price of one label (e.g. dollars); adds the money saved to the table.
    seconds_per_label : float, optional
        Annotator seconds per label; adds the annotator-hours saved to the table.
    metric : str, default "accuracy"
        Name of the metric the curves measure (shown in the table).

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
    try:
        counts = np.asarray(label_counts, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"label_counts must be a 1-D array of label counts; got "
                        f"{label_counts!r}") from exc
    if counts.ndim != 1 or counts.size < 1 or np.any(np.diff(counts) <= 0):
        raise DataError("label_counts must be a 1-D strictly increasing array; got "
                        f"{counts.tolist() if counts.size <= 10 else f'shape {counts.shape}'}")
    if not isinstance(curves, dict):
        raise ArgumentError(f"curves must be a dict (strategy name -> mean curve); got "
                            f"{type(curves).__name__}")
    if baseline not in curves:
        raise ArgumentError(f"curves must include the baseline {baseline!r}; got "
                            f"{', '.join(curves)}")
    if isinstance(budgets, (str, bytes)) or not hasattr(budgets, "__iter__") or not all(
            isinstance(b, (int, float, np.integer, np.floating)) and not isinstance(b, bool)
            and np.isfinite(b) for b in budgets):
        raise ArgumentError(f"budgets must be a sequence of label counts; got {budgets!r}")
    budgets = tuple(int(b) for b in budgets)
    for b in budgets:
        if not counts[0] <= b <= counts[-1]:
            raise ArgumentError(f"budget {b} is outside the measured label counts "
                                f"[{int(counts[0])}, {int(counts[-1])}]")
    names = tuple(curves)
    targets = np.array([np.interp(b, counts, np.asarray(curves[baseline], dtype=np.float64))
                        for b in budgets])
    needed = np.full((len(names), len(budgets)), np.nan)
    for i, name in enumerate(names):
        try:
            acc = np.asarray(curves[name], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DataError(f"curve {name!r} must be an array of {counts.size} numbers; got "
                            f"{curves[name]!r}") from exc
        if acc.shape != counts.shape:
            raise DataError(f"curve {name!r} has shape {acc.shape}; expected {counts.shape}")
        if not np.isfinite(acc).all():
            raise DataError(f"curve {name!r} must be finite; position "
                            f"{int(np.flatnonzero(~np.isfinite(acc))[0])} is "
                            f"{acc[~np.isfinite(acc)][0]}")
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
                        target_accuracy=targets, labels_needed=needed, saved_percent=saved,
                        cost_per_label=_check_rate(cost_per_label, "cost_per_label"),
                        seconds_per_label=_check_rate(seconds_per_label, "seconds_per_label"),
                        metric=str(metric))


def _check_rate(value, name):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
            or not np.isfinite(value) or value < 0:
        raise ArgumentError(f"{name} must be a finite number >= 0 or None; got {value!r}")
    return float(value)


def money(amount) -> str:
    """``1800.0`` -> ``"$1,800"``; cents only for amounts below $100 that have them."""
    sign = "-" if amount < 0 else ""
    amount = abs(float(amount))
    cents = amount < 100 and abs(amount - round(amount)) >= 0.005
    return f"{sign}${amount:,.2f}" if cents else f"{sign}${amount:,.0f}"


@dataclass(frozen=True)
class SavingsTable:
    """Labels needed to match the baseline's accuracy at each budget (see :func:`labels_saved`).

    ``labels_needed``, ``saved_percent`` and ``labels_saved_count`` have shape (strategies,
    budgets); NaN means the strategy never reached the target ("not reached"). With
    ``cost_per_label`` / ``seconds_per_label`` the table also says what the saved labels
    cost (:attr:`money_saved`) and how many annotator-hours they take (:attr:`hours_saved`).
    """

    strategies: tuple
    budgets: tuple
    baseline: str
    target_accuracy: np.ndarray
    labels_needed: np.ndarray
    saved_percent: np.ndarray
    cost_per_label: float | None = None
    seconds_per_label: float | None = None
    metric: str = "accuracy"

    @property
    def labels_saved_count(self) -> np.ndarray:
        """Labels saved against the baseline, ``budget - labels_needed`` (S, B)."""
        return np.asarray(self.budgets, dtype=np.float64) - self.labels_needed

    @property
    def money_saved(self) -> np.ndarray | None:
        """``labels_saved_count * cost_per_label`` (S, B), or None without a price."""
        if self.cost_per_label is None:
            return None
        return self.labels_saved_count * self.cost_per_label

    @property
    def hours_saved(self) -> np.ndarray | None:
        """Annotator-hours saved, ``labels_saved_count * seconds_per_label / 3600`` (S, B)."""
        if self.seconds_per_label is None:
            return None
        return self.labels_saved_count * self.seconds_per_label / 3600.0

    def to_markdown(self) -> str:
        head = ["strategy"]
        for b, a in zip(self.budgets, self.target_accuracy):
            head += [f"labels to reach {self.baseline}@{b} ({a:.4f})", f"saved @{b}"]
            if self.cost_per_label is not None:
                head.append(f"money saved @{b}")
            if self.seconds_per_label is not None:
                head.append(f"annotator-hours saved @{b}")
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        money_saved, hours_saved = self.money_saved, self.hours_saved
        for i, name in enumerate(self.strategies):
            cells = [name]
            for j in range(len(self.budgets)):
                n = self.labels_needed[i, j]
                extra = (self.cost_per_label is not None) + (self.seconds_per_label is not None)
                if np.isnan(n):
                    cells += ["not reached"] * (2 + extra)
                    continue
                cells += [f"{n:.0f}", f"{self.saved_percent[i, j]:+.1f} %"]
                if money_saved is not None:
                    cells.append(money(money_saved[i, j]))
                if hours_saved is not None:
                    cells.append(f"{hours_saved[i, j]:,.1f}")
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def sentences(self, strategy=None) -> list:
        """One plain sentence per (strategy, budget), e.g. "margin reached random's accuracy
        at 2,000 labels (0.8023) with 889 labels: 1,111 labels saved (55.6 %) = $111,100 at
        $100 per label, 30.9 annotator-hours at 100 s per label". ``strategy`` limits them to
        one strategy; the baseline itself is left out."""
        names = self.strategies if strategy is None else (strategy,)
        out = []
        for name in names:
            if name not in self.strategies:
                raise ArgumentError(f"strategy must be one of {', '.join(self.strategies)}; "
                                    f"got {name!r}")
            if name == self.baseline:
                continue
            i = self.strategies.index(name)
            for j, b in enumerate(self.budgets):
                what = (f"{self.baseline}'s {self.metric} at {b:,} labels "
                        f"({self.target_accuracy[j]:.4f})")
                n = self.labels_needed[i, j]
                if np.isnan(n):
                    out.append(f"{name} did not reach {what} within the measured labels")
                    continue
                saved = self.labels_saved_count[i, j]
                text = (f"{name} reached {what} with {n:,.0f} labels: "
                        f"{saved:,.0f} labels {'saved' if saved >= 0 else 'more than random'} "
                        f"({self.saved_percent[i, j]:+.1f} %)")
                if self.cost_per_label is not None:
                    text += (f" = {money(abs(saved) * self.cost_per_label)} at "
                             f"{money(self.cost_per_label)} per label")
                if self.seconds_per_label is not None:
                    text += (f", {abs(saved) * self.seconds_per_label / 3600:,.1f} "
                             f"annotator-hours at {self.seconds_per_label:g} s per label")
                out.append(text)
        return out

    def __str__(self) -> str:
        return self.to_markdown()



def aulc(label_counts, curves) -> np.ndarray:
    """Normalised area under learning curves: the mean metric over the labelled range.

    ``curves`` has shape (..., T) on ``label_counts`` (T,); the trapezoid area between the
    first and the last count is divided by their distance, so a flat curve at 0.8 has
    AULC 0.8 whatever the budget, and AULCs of runs with the same counts compare directly.
    """
    counts = np.asarray(label_counts, dtype=np.float64)
    curves = np.asarray(curves, dtype=np.float64)
    if counts.ndim != 1 or counts.size < 2 or np.any(np.diff(counts) <= 0):
        raise DataError("label_counts must be 1-D, strictly increasing, with at least 2 "
                        f"points; got {counts.tolist()}")
    if curves.shape[-1] != counts.size:
        raise DataError(f"curves must end in an axis of {counts.size} points (one per label "
                        f"count); got shape {curves.shape}")
    widths = np.diff(counts)
    area = ((curves[..., 1:] + curves[..., :-1]) * 0.5 * widths).sum(axis=-1)
    return area / (counts[-1] - counts[0])


@dataclass(frozen=True)
class AulcTable:
    """AULC per strategy over repeats, and its paired difference to the baseline.

    ``mean`` and ``se`` (standard error, ddof=1) are over repeats; ``diff`` and ``diff_se``
    are the mean and standard error of the per-repeat difference strategy - baseline (the
    repeats share seed sets, so the pairing removes their common noise). ``per_repeat`` is
    (S, R).
    """

    strategies: tuple
    baseline: str
    per_repeat: np.ndarray
    metric: str = "accuracy"

    @property
    def mean(self) -> np.ndarray:
        return self.per_repeat.mean(axis=1)

    @property
    def se(self) -> np.ndarray:
        return _se(self.per_repeat)

    def _base(self):
        return self.per_repeat[self.strategies.index(self.baseline)]

    @property
    def diff(self) -> np.ndarray:
        return (self.per_repeat - self._base()).mean(axis=1)

    @property
    def diff_se(self) -> np.ndarray:
        return _se(self.per_repeat - self._base())

    def paired(self, a, b):
        """(mean, se) of the per-repeat AULC difference ``a - b`` between two strategies."""
        d = self.per_repeat[self.strategies.index(a)] - self.per_repeat[self.strategies.index(b)]
        return float(d.mean()), float(_se(d[None])[0])

    def verdict(self, i, *, noise=1.0) -> str:
        """"better", "worse" or "tie" against the baseline: the paired difference beyond
        ``noise`` standard errors either way."""
        d, se = self.diff[i], self.diff_se[i]
        if d > noise * se and d > 0:
            return "better"
        if d < -noise * se and d < 0:
            return "worse"
        return "tie"

    def to_markdown(self) -> str:
        lines = [f"| strategy | AULC ({self.metric}, mean ± SE) | vs {self.baseline} (paired, "
                 "± SE) | verdict |", "|---|---|---|---|"]
        for i, name in enumerate(self.strategies):
            if name == self.baseline:
                lines.append(f"| {name} | {self.mean[i]:.4f} ± {self.se[i]:.4f} | | baseline |")
                continue
            v = self.verdict(i)
            mark = {"better": "better", "worse": "**loses to random**",
                    "tie": "within noise"}[v] if self.baseline == "random" else v
            lines.append(f"| {name} | {self.mean[i]:.4f} ± {self.se[i]:.4f} | "
                         f"{self.diff[i]:+.4f} ± {self.diff_se[i]:.4f} | {mark} |")
        return "\n".join(lines)


def _se(values) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    r = values.shape[-1]
    if r < 2:
        return np.full(values.shape[:-1], np.nan)
    return values.std(axis=-1, ddof=1) / np.sqrt(r)
