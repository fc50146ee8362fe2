"""When to stop asking: the stopping rules of :class:`ActiveLoop` and the agreement they use.

The rules (checked in this order after every retraining): the label budget, a maximum number
of rounds, a target validation metric, stabilising predictions on a stop set (Bloodgood &
Vijay-Shanker, 2009) and low overall uncertainty of the unlabeled pool.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._errors import ArgumentError, DataError
from ..scoring import UNCERTAINTY_METHODS
from ._common import _check_fraction, _check_int, _n_rows, _rows

#: Names that :attr:`ActiveLoop.stopped_by` can take.
STOP_REASONS = ("budget", "max_rounds", "target", "stable_predictions", "low_uncertainty",
                "pool_exhausted")


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


class _StoppingRules:
    """The stopping half of :class:`ActiveLoop`: its arguments, checked once, and the check
    made after every retraining. Mixed into the loop, which owns the state it reads."""

    def _init_stopping(self, validation, target, metric, stop_set, kappa_threshold,
                       kappa_window, uncertainty_threshold, uncertainty_method):
        self.validation = None
        if validation is not None:
            if not isinstance(validation, (tuple, list)) or len(validation) != 2:
                raise ArgumentError("validation must be a pair (X_val, y_val); got "
                                    f"{type(validation).__name__}")
            X_val, y_val = validation
            y_val = np.asarray(y_val)
            if _n_rows(X_val, "validation X") != y_val.shape[0]:
                raise DataError(f"validation X has {_n_rows(X_val, 'validation X')} rows but "
                                f"y has {y_val.shape[0]}")
            self.validation = (X_val, y_val)
        if metric != "accuracy" and not callable(metric):
            raise ArgumentError(f"metric must be 'accuracy' or a callable(y_true, y_pred); "
                                f"got {metric!r}")
        self.metric = metric
        self.target = None
        if target is not None:
            if self.validation is None:
                raise ArgumentError("target needs validation=(X_val, y_val) to measure the metric")
            if isinstance(target, bool) or not isinstance(target, numbers.Real):
                raise ArgumentError(f"target must be a number; got {target!r}")
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
        if stop_set is not None:
            # Without a threshold the kappas are still recorded (history), for a rule
            # evaluated afterwards (see stopping_points).
            _n_rows(stop_set, "stop_set")
            self.stop_set = stop_set
        self.uncertainty_threshold = None
        if uncertainty_method not in UNCERTAINTY_METHODS:
            raise ArgumentError(f"uncertainty_method must be one of "
                                f"{', '.join(UNCERTAINTY_METHODS)}; got {uncertainty_method!r}")
        self.uncertainty_method = uncertainty_method
        if uncertainty_threshold is not None:
            if isinstance(uncertainty_threshold, bool) or \
                    not isinstance(uncertainty_threshold, numbers.Real):
                raise ArgumentError(f"uncertainty_threshold must be a number; "
                                    f"got {uncertainty_threshold!r}")
            self.uncertainty_threshold = float(uncertainty_threshold)

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


def stopping_points(label_counts, metric, kappa=None, uncertainty=None, *,
                    kappa_threshold=0.99, kappa_window=3, uncertainty_thresholds=(0.1,)):
    """Where each stopping rule would have stopped runs that went to the full budget.

    The rules are those of :class:`ActiveLoop`, checked after every retraining exactly as it
    checks them, on curves recorded by :func:`fastal.simulate` (which records ``kappa`` on a
    stop set and the pool's mean ``uncertainty`` without stopping).

    Parameters
    ----------
    label_counts : array (T,)
    metric : array (R, T)
        Test metric of each repeat at each point.
    kappa : array (R, T), optional
        Cohen's kappa of successive models on the stop set (NaN at the first model).
    uncertainty : array (R, T), optional
        Mean least-confidence score of the unlabeled pool.
    kappa_threshold, kappa_window
        The stabilising-predictions rule (Bloodgood & Vijay-Shanker, 2009: 0.99 over 3).
    uncertainty_thresholds : sequence of float
        One overall-uncertainty rule per threshold (stop once the mean is below it).

    Returns
    -------
    dict rule name -> (labels (R,), metric (R,), fired (R,) bool)
        Labels and metric of the model at the stop; runs where the rule never fired stop at
        the budget (``fired`` False). ``"budget"`` is the reference (always at the end).
    """
    counts = np.asarray(label_counts)
    metric = np.atleast_2d(np.asarray(metric, dtype=np.float64))
    R, T = metric.shape
    if counts.shape != (T,):
        raise DataError(f"label_counts must have {T} points like metric; got {counts.shape}")

    def stop_at(fires):
        labels, values, fired = np.empty(R), np.empty(R), np.zeros(R, dtype=bool)
        for r in range(R):
            hit = np.flatnonzero(fires[r])
            t = int(hit[0]) if hit.size else T - 1
            fired[r] = bool(hit.size)
            labels[r], values[r] = counts[t], metric[r, t]
        return labels, values, fired

    out = {"budget": stop_at(np.zeros((R, T), dtype=bool))}
    if kappa is not None:
        kappa = np.atleast_2d(np.asarray(kappa, dtype=np.float64))
        fires = np.zeros((R, T), dtype=bool)
        for t in range(T):
            window = kappa[:, max(0, t - kappa_window + 1): t + 1]
            if window.shape[1] == kappa_window:
                complete = ~np.isnan(window).any(axis=1)
                fires[:, t] = complete & (np.nan_to_num(window).mean(axis=1) >= kappa_threshold)
        out[f"stable predictions (kappa >= {kappa_threshold:g} over {kappa_window})"] = \
            stop_at(fires)
    if uncertainty is not None:
        uncertainty = np.atleast_2d(np.asarray(uncertainty, dtype=np.float64))
        for threshold in uncertainty_thresholds:
            with np.errstate(invalid="ignore"):
                fires = uncertainty < threshold
            out[f"overall uncertainty < {threshold:g}"] = stop_at(fires)
    return out
