"""The user's model behind one interface (fastal never trains anything itself)."""

from __future__ import annotations

import numpy as np

from .._errors import ArgumentError, DataError
from ._common import _n_rows


class _Model:
    """The user's model behind one interface: fit a fresh copy, predict probabilities."""

    def __init__(self, model):
        if isinstance(model, tuple):
            if len(model) != 2 or not all(callable(f) for f in model):
                raise ArgumentError("model as a tuple must be (train, predict_proba): two "
                                    "callables train(X, y) -> model and "
                                    "predict_proba(model, X) -> probs; got a tuple of "
                                    f"{len(model)}: {', '.join(type(f).__name__ for f in model)}")
            self.train, self.predict = model
            self.estimator = None
        elif hasattr(model, "fit") and hasattr(model, "predict_proba"):
            self.estimator = model
        else:
            raise ArgumentError("model must be a scikit-learn style estimator with fit and "
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
            raise DataError(f"predict_proba must return shape ({_n_rows(X, 'X')}, classes); "
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
