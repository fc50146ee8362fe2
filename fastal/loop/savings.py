"""Labels saved against a baseline: the table read off the mean learning curves."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._errors import FastalError


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

