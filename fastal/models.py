"""Models that turn embeddings into scores, chunk by chunk: linear heads, committees, adapters.

Thin and explicit: a :class:`LinearHead` is ``logits = X @ W + b`` (one pass of a Numba kernel
per chunk, with a fixed order of operations, so a row's logits never depend on the chunk, the
threads, the BLAS library or the CPU), a :class:`Committee` stacks M heads into one pass, :class:`ProbaModel` wraps anything with
``predict_proba``. :func:`model_chunk_scores` is what a streaming driver calls per chunk of
embeddings; it feeds the model's output to the uncertainty, committee or EGL kernels, so the
logits of a chunk are the only intermediate (rows x C, or rows x M*C for a committee).
"""

from __future__ import annotations

import numpy as np

from ._config import CHUNK_BYTES, MIN_CHUNK_ROWS
from ._errors import ArgumentError, DataError
from ._kernels import committee as _kc
from ._kernels import linear as _kl
from ._kernels import uncertainty as _ku
from .committee import (
    COMMITTEE_METHODS, EGL_METHODS, PROBABILITY_TOLERANCE, _as_2d_out, _codes,
    _COMMITTEE_CODES, _raise_bad_member_row, _raise_bad_probability_row, check_methods,
    egl_chunk,
)
from .io import check_chunk_rows, compute_dtype, to_numpy
from ._validation import make_rng

#: Same names as ``fastal.scoring.UNCERTAINTY_METHODS`` (a test keeps them equal).
UNCERTAINTY_METHODS = ("entropy", "least_confidence", "margin", "ratio")
_UNCERTAINTY_CODES = {"entropy": _ku.ENTROPY, "least_confidence": _ku.LEAST_CONFIDENCE,
                      "margin": _ku.MARGIN, "ratio": _ku.RATIO}


def _real_matrix(a, what, ndim=2):
    a = to_numpy(a, what)
    if a.ndim != ndim:
        raise DataError(f"{what} must be {ndim}-D; got shape {a.shape}")
    dtype = compute_dtype(a.dtype, what)
    a = np.asarray(a, dtype=np.float64)
    if not np.isfinite(a).all():
        raise DataError(f"{what} contains NaN or inf")
    return a, dtype


class LinearHead:
    """A softmax linear classifier on embeddings: ``logits = X @ W + b``.

    Parameters
    ----------
    W : array-like, shape (d, C)
        Weights, features along the rows and classes along the columns (the transpose of
        scikit-learn's ``coef_``; use :meth:`from_sklearn` for fitted estimators).
    b : array-like, shape (C,), optional
        Bias. Without it the model has no bias (this matters for
        ``expected_gradient_length``, whose gradient then has no bias part).
    classes : array-like, shape (C,), optional
        The label of each column (kept for alignment checks in :class:`Committee`).

    Attributes
    ----------
    n_features, n_classes : int
    """

    def __init__(self, W, b=None, *, classes=None):
        W, _ = _real_matrix(W, "W")
        if W.shape[0] < 1 or W.shape[1] < 2:
            raise DataError(f"W must be (features, classes) with at least 1 feature and 2 "
                            f"classes; got shape {W.shape}")
        if b is not None:
            b, _ = _real_matrix(b, "b", ndim=1)
            if b.shape != (W.shape[1],):
                raise DataError(f"b must have shape ({W.shape[1]},) to match W of shape "
                                f"{W.shape}; got {b.shape}")
        if classes is not None:
            classes = np.asarray(classes)
            if classes.shape != (W.shape[1],):
                raise DataError(f"classes must have one label per column of W "
                                f"({W.shape[1]}); got shape {classes.shape}")
        self.W = W
        self.b = b
        self.classes = classes
        self._cast = {}

    @property
    def n_features(self) -> int:
        return self.W.shape[0]

    @property
    def n_classes(self) -> int:
        return self.W.shape[1]

    @classmethod
    def from_sklearn(cls, estimator):
        """A head from a fitted linear scikit-learn classifier (``coef_``, ``intercept_``).

        Works for LogisticRegression, SGDClassifier, LinearSVC, RidgeClassifier and the
        like. ``coef_`` (C, d) becomes W = coef_.T; a binary model's ``coef_`` (1, d)
        becomes a 2-class head with logits [0, z] (softmax([0, z])[1] = sigmoid(z)), so for
        LogisticRegression (binary or multinomial) the head's softmax reproduces
        ``predict_proba``. For one-vs-rest models (LinearSVC, hinge SGD) the softmax of the
        decision values is a monotone scoring, not a calibrated probability.
        """
        if not hasattr(estimator, "coef_"):
            raise ArgumentError(
                f"from_sklearn needs a fitted linear estimator with coef_ and intercept_; "
                f"{type(estimator).__name__} has no coef_ (is it fitted? for other models "
                f"use ProbaModel)")
        coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64))
        fit_intercept = getattr(estimator, "fit_intercept", True)
        intercept = np.atleast_1d(np.asarray(getattr(estimator, "intercept_", 0.0),
                                             dtype=np.float64))
        if intercept.shape == (1,) and coef.shape[0] > 1:
            intercept = np.full(coef.shape[0], intercept[0])
        classes = getattr(estimator, "classes_", None)
        if coef.shape[0] == 1:
            coef = np.vstack([np.zeros_like(coef), coef])
            intercept = np.array([0.0, intercept[0]])
        b = intercept if fit_intercept else None
        return cls(coef.T, b, classes=classes)

    def _weights(self, dtype):
        """W and b (zeros without a bias) in the dtype of the embeddings, cast and padded to a
        multiple of 4 classes once (``padded_weights``), cached."""
        if dtype not in self._cast:
            W = np.ascontiguousarray(self.W, dtype=dtype)
            b = (np.zeros(self.n_classes, dtype=dtype) if self.b is None
                 else self.b.astype(dtype))
            self._cast[dtype] = _kl.padded_weights(W, b)
        return self._cast[dtype]

    def logits(self, X_chunk, out=None):
        """``X_chunk @ W + b``, each row summed in one fixed order.

        ``logits[i, k] = b_k + X[i, 0] W[0, k] + ... + X[i, d-1] W[d-1, k]``, left to right
        in the dtype of the embeddings, every operation rounded once (IEEE 754). A row's
        logits are therefore bit-identical whatever chunk it is in, the thread count, the
        BLAS library and the CPU (a BLAS GEMM is not: its rounding depends on the shape of
        the call and on the CPU's kernels). Accuracy is that of a float32 (float64) GEMM.

        Parameters
        ----------
        X_chunk : ndarray, shape (rows, d)
            Embeddings; float32 stays float32 (float64 stays float64, other real dtypes
            become float32).
        out : ndarray, shape (rows, C), optional
            Written in place (dtype of the embeddings).

        Returns
        -------
        logits : ndarray, shape (rows, C)
        """
        X = _embeddings(X_chunk, self.n_features)
        W, b = self._weights(X.dtype)
        if out is None:
            out = np.empty((X.shape[0], self.n_classes), dtype=X.dtype)
        elif (out.shape != (X.shape[0], self.n_classes) or out.dtype != X.dtype
              or not out.flags.writeable):
            raise ArgumentError(f"out must be a writable ({X.shape[0]}, {self.n_classes}) "
                                f"{X.dtype} array; got {out.dtype} {out.shape}")
        _kl.linear_logits(X, W, b, out)
        return out

    def __repr__(self):
        bias = "with bias" if self.b is not None else "no bias"
        return f"LinearHead(d={self.n_features}, C={self.n_classes}, {bias})"


class ProbaModel:
    """Adapter for any estimator with ``predict_proba``, called chunk by chunk.

    Parameters
    ----------
    estimator : object
        Anything with ``predict_proba(X) -> (rows, C)`` (a fitted scikit-learn classifier,
        a wrapped torch model, ...).
    """

    def __init__(self, estimator):
        if not callable(getattr(estimator, "predict_proba", None)):
            raise ArgumentError(f"estimator has no predict_proba ({type(estimator).__name__}); "
                                f"wrap a classifier that outputs class probabilities")
        self.estimator = estimator
        self.classes = getattr(estimator, "classes_", None)

    def probs(self, X_chunk, name="data", start=0):
        """The estimator's probabilities for a chunk, (rows, C) float32 or float64."""
        probs = to_numpy(self.estimator.predict_proba(X_chunk), "predict_proba output")
        rows = X_chunk.shape[0]
        if probs.ndim != 2 or probs.shape[0] != rows or probs.shape[1] < 2:
            raise DataError(f"estimator.predict_proba must return (rows, classes) with at "
                            f"least 2 classes for the {rows} rows of {name} starting at "
                            f"row {start}; got shape {probs.shape}")
        return np.asarray(probs, dtype=compute_dtype(probs.dtype, "predict_proba output"))

    def __repr__(self):
        return f"ProbaModel({type(self.estimator).__name__})"


class Committee:
    """M members with the same classes, scored together.

    Parameters
    ----------
    members : sequence of LinearHead, or sequence of ProbaModel
        At least 2. Linear heads must share d and C; their weights are stacked into one
        (d, M*C) matrix so a chunk costs one pass, and the (rows, M*C) logits are viewed
        as (M, rows, C) without a copy. When members carry ``classes`` they must be
        equal (same labels, same order): misaligned columns would mix up classes.
    """

    def __init__(self, members):
        members = list(members)
        if len(members) < 2:
            raise ArgumentError(f"committee methods need at least 2 members; got {len(members)}")
        kinds = {type(m) for m in members}
        if kinds == {LinearHead}:
            first = members[0]
            for m, head in enumerate(members):
                if (head.n_features, head.n_classes) != (first.n_features, first.n_classes):
                    raise DataError(
                        f"every head must have the same (features, classes); members[0] has "
                        f"{(first.n_features, first.n_classes)} but members[{m}] has "
                        f"{(head.n_features, head.n_classes)}")
                if (head.b is None) != (first.b is None):
                    raise DataError(f"either every head has a bias or none has; members[0] "
                                    f"{'has none' if first.b is None else 'has one'} but "
                                    f"members[{m}] {'has none' if head.b is None else 'has one'}")
            weights = np.hstack([h.W for h in members])
            bias = None if first.b is None else np.concatenate([h.b for h in members])
            self._stacked = LinearHead(weights, bias)
            self.n_classes = first.n_classes
        elif kinds == {ProbaModel}:
            self._stacked = None
            self.n_classes = None
        else:
            raise ArgumentError("Committee members must all be LinearHead or all be ProbaModel; "
                                f"got {sorted(k.__name__ for k in kinds)}")
        self.classes = members[0].classes
        for m, member in enumerate(members):
            if (member.classes is None) != (self.classes is None) or (
                    member.classes is not None
                    and not np.array_equal(member.classes, self.classes)):
                raise DataError(
                    f"members[{m}] has classes {member.classes} but members[0] has "
                    f"{self.classes}; every member must predict the same classes in the "
                    f"same order")
        self.members = members

    @property
    def n_members(self) -> int:
        return len(self.members)

    def outputs(self, X_chunk, name="data", start=0):
        """(values (M, rows, C), from_logits): logits of linear heads, else probabilities."""
        if self._stacked is not None:
            logits = self._stacked.logits(X_chunk)
            rows = logits.shape[0]
            return logits.reshape(rows, self.n_members, self.n_classes).transpose(1, 0, 2), True
        probs = [m.probs(X_chunk, name, start) for m in self.members]
        shapes = {p.shape for p in probs}
        if len(shapes) > 1:
            raise DataError(f"committee members returned probabilities of different shapes "
                            f"{sorted(shapes)}")
        return np.stack(probs), False

    def __repr__(self):
        return f"Committee({self.n_members} x {type(self.members[0]).__name__})"


def _embeddings(X_chunk, n_features, name="data"):
    """View the chunk as a (rows, d) float32/float64 array, checking d."""
    X = to_numpy(X_chunk, name)
    if X.ndim != 2:
        raise DataError(f"{name} must be 2-D (rows, features); got shape {X.shape}")
    if X.shape[1] != n_features:
        raise DataError(f"{name} has {X.shape[1]} features per row but the model expects "
                        f"{n_features}")
    dtype = compute_dtype(X.dtype, name)
    return X if X.dtype == dtype else X.astype(dtype)


def _raise_bad_embedding(X, r, start, name):
    """Raise for row r of X if it is not finite; return otherwise."""
    x = np.asarray(X[r], dtype=np.float64)
    if not np.isfinite(x).all():
        j = int(np.flatnonzero(~np.isfinite(x))[0])
        raise DataError(f"row {start + r} of {name} contains {x[j]} at column {j}; "
                        f"embeddings must be finite")


def bootstrap_committee(X_labeled, y_labeled, n_members, seed=None, estimator=None,
                        max_attempts=100):
    """Train M linear heads on bootstrap resamples of the labeled set.

    Parameters
    ----------
    X_labeled : array-like, shape (L, d)
        Embeddings of the labeled examples (finite).
    y_labeled : array-like, shape (L,)
        Their labels; at least 2 distinct classes.
    n_members : int
        Committee size M >= 2.
    seed : int, numpy.random.Generator or None
        Source of the resamples.
    estimator : scikit-learn linear classifier, optional
        Cloned and fitted on each resample; default
        ``LogisticRegression(max_iter=1000)``. It must expose ``coef_``/``intercept_``.
    max_attempts : int, default 100
        Resamples drawn per member before giving up on one containing every class.

    Returns
    -------
    Committee
        Of :class:`LinearHead`, every head with ``classes`` = the sorted distinct labels
        of ``y_labeled``.

    Raises
    ------
    FastalError
        Bad shapes, NaN embeddings, fewer than 2 classes, n_members < 2, an estimator
        without ``coef_``, or a class so rare that ``max_attempts`` resamples all missed it.

    Notes
    -----
    Every resample must contain every class: a member trained without class k would have
    no column for k (scikit-learn sizes ``coef_`` by the classes it saw), which would
    misalign the committee. So a resample missing a class is drawn again; the committee
    then scores exactly the classes present in ``y_labeled``. Classes that have no labeled
    example cannot be predicted by any member.
    """
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression

    X, _ = _real_matrix(X_labeled, "X_labeled")
    y = np.asarray(y_labeled)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise DataError(f"y_labeled must be 1-D with one label per row of X_labeled "
                        f"({X.shape[0]}); got shape {y.shape}")
    if isinstance(n_members, bool) or not isinstance(n_members, (int, np.integer)) \
            or n_members < 2:
        raise ArgumentError(f"committee methods need at least 2 members; got n_members="
                            f"{n_members!r}")
    classes = np.unique(y)
    if classes.size < 2:
        raise DataError(f"y_labeled must contain at least 2 classes; got {classes.tolist()}")
    rng = make_rng(seed)
    base = LogisticRegression(max_iter=1000) if estimator is None else estimator
    n = y.shape[0]
    heads = []
    for m in range(n_members):
        for _ in range(max_attempts):
            rows = rng.integers(0, n, size=n)
            if np.unique(y[rows]).size == classes.size:
                break
        else:
            counts = dict(zip(*np.unique(y, return_counts=True)))
            rare = min(counts, key=counts.get)
            raise DataError(
                f"{max_attempts} bootstrap resamples of the {n} labeled rows all missed a "
                f"class (rarest: {rare!r} with {counts[rare]} example(s)); label more "
                f"examples of the rare classes or use fewer classes")
        fitted = clone(base).fit(X[rows], y[rows])
        head = LinearHead.from_sklearn(fitted)
        fitted_classes = np.asarray(getattr(fitted, "classes_", classes))
        if not np.array_equal(fitted_classes, classes):
            # Defensive: reorder columns to the committee's class order.
            order = np.array([int(np.flatnonzero(fitted_classes == k)[0]) for k in classes])
            head = LinearHead(head.W[:, order], None if head.b is None else head.b[order],
                              classes=classes)
        heads.append(head)
    return Committee(heads)


# --------------------------------------------------------------------------- scoring


def model_methods(model) -> tuple:
    """The method names ``model_chunk_scores`` accepts for this model."""
    if isinstance(model, LinearHead):
        return UNCERTAINTY_METHODS + EGL_METHODS
    if isinstance(model, ProbaModel):
        return UNCERTAINTY_METHODS + ("expected_gradient_length_bias",)
    if isinstance(model, Committee):
        return COMMITTEE_METHODS
    raise ArgumentError(f"model must be a LinearHead, Committee or ProbaModel; got "
                        f"{type(model).__name__}")


def check_model_methods(model, methods) -> tuple:
    """Canonical names for ``methods`` (str or sequence), checked against the model."""
    return check_methods(methods, model_methods(model), f"{type(model).__name__}")


def model_chunk_scores(model, X_chunk, methods, out, *, start=0, name="data"):
    """Score one chunk of embeddings through a model, every method in one model call.

    Parameters
    ----------
    model : LinearHead, Committee or ProbaModel
    X_chunk : ndarray, shape (rows, d)
        Embeddings (float32 is kept float32 for the logits).
    methods : tuple of str
        Canonical names (see :func:`check_model_methods`):

        - LinearHead: ``UNCERTAINTY_METHODS`` on softmax(logits), and ``EGL_METHODS``
          (features = the embeddings, ``include_bias`` = whether the head has a bias);
        - ProbaModel: ``UNCERTAINTY_METHODS`` and ``expected_gradient_length_bias`` on
          ``predict_proba``;
        - Committee: ``COMMITTEE_METHODS`` (from logits for heads, from probabilities for
          ProbaModel members).
    out : ndarray, shape (len(methods), rows) (or (rows,) for one method), float32/float64
    start : int
        Global position of the chunk's first row, for error messages.
    name : str
        What the embeddings are called in error messages.

    Raises
    ------
    FastalError
        A method the model does not support; wrong dimensions or feature count; a
        non-finite embedding (naming its global row and column); non-finite logits from
        finite embeddings; invalid ``predict_proba`` rows.
    """
    valid = model_methods(model)
    for method in methods:
        if method not in valid:
            raise ArgumentError(f"{type(model).__name__} method must be one of "
                                f"{', '.join(valid)}; got {method!r}")
    if isinstance(model, Committee):
        n_features = model._stacked.n_features if model._stacked is not None else None
    else:
        n_features = model.n_features if isinstance(model, LinearHead) else None
    X = (_embeddings(X_chunk, n_features, name) if n_features is not None
         else to_numpy(X_chunk, name))
    rows = X.shape[0]
    out2 = _as_2d_out(out, len(methods), rows)

    if isinstance(model, Committee):
        values, from_logits = model.outputs(X, name, start)
        n_bad = _kc._committee_scores(values, _codes(methods, _COMMITTEE_CODES), from_logits,
                                      PROBABILITY_TOLERANCE, out2)
        if n_bad:
            r = int(np.flatnonzero(np.isnan(out2[0]))[0])
            if n_features is not None:
                _raise_bad_embedding(X, r, start, name)
            _raise_bad_member_row(values, out2[0], start, from_logits,
                                  f"{name} (model output)")
        return

    if (isinstance(model, LinearHead) and X.dtype == np.float32 and len(methods) == 1
            and methods[0] not in EGL_METHODS):
        # one uncertainty method from float32 embeddings: the logits scored where they are
        # made, never stored (the same bits as scoring model.logits(X))
        if _ku.linear_scores(X, *model._weights(X.dtype), model.n_classes,
                             _UNCERTAINTY_CODES[methods[0]], out2[0]):
            _raise_bad_output(X, None, out2[0], True, start, name)
        return
    if isinstance(model, LinearHead):
        values, from_logits = model.logits(X), True
    else:
        values, from_logits = model.probs(X, name, start), False
    egl = [k for k, m in enumerate(methods) if m in EGL_METHODS]
    for k, method in enumerate(methods):
        if k in egl:
            continue
        n_bad = _ku.uncertainty_scores(values, _UNCERTAINTY_CODES[method], from_logits,
                                       PROBABILITY_TOLERANCE, out2[k])
        if n_bad:
            _raise_bad_output(X, values, out2[k], from_logits, start, name)
    if egl:
        # EGL reads the same logits/probabilities; the kernel writes a (len(egl), rows)
        # buffer because the EGL rows of ``out`` need not be contiguous.
        egl_out = np.empty((len(egl), rows), dtype=out2.dtype)
        features = X if isinstance(model, LinearHead) else None
        include_bias = isinstance(model, LinearHead) and model.b is not None
        egl_chunk(features, values, egl_out, methods=tuple(methods[k] for k in egl),
                  include_bias=include_bias, from_logits=from_logits, start=start, name=name)
        out2[egl] = egl_out


def _raise_bad_output(X, values, scores, from_logits, start, name):
    r = int(np.flatnonzero(np.isnan(scores))[0])
    _raise_bad_embedding(X, r, start, name)
    if from_logits:
        raise DataError(f"row {start + r} of {name} gives non-finite logits from finite "
                        f"embeddings (overflow: check the scale of the embeddings and W)")
    _raise_bad_probability_row(values[r], f"row {start + r} of {name} (predict_proba output)",
                               False)


def score_model(model, X, methods, *, chunk_rows=None):
    """Score every row of in-memory embeddings through a model.

    Parameters
    ----------
    model : LinearHead, Committee or ProbaModel
    X : array-like, shape (N, d)
    methods : str or sequence of str
        See :func:`model_chunk_scores`.
    chunk_rows : int, optional
        Rows per chunk (default: about 16 MiB of embeddings). Results do not depend on it.

    Returns
    -------
    scores : ndarray of float32, shape (N,) for one method name, (n_methods, N) for a
        sequence.

    Examples
    --------
    >>> import numpy as np
    >>> from fastal.models import LinearHead, score_model
    >>> head = LinearHead(np.array([[1.0, -1.0]]), np.zeros(2))
    >>> score_model(head, np.array([[0.0], [5.0]]), "margin")
    array([1.000000e+00, 9.079574e-05], dtype=float32)
    """
    single = isinstance(methods, str)
    methods = check_model_methods(model, methods)
    X = to_numpy(X, "X")
    if X.ndim != 2:
        raise DataError(f"X must be 2-D (rows, features); got shape {X.shape}")
    if X.shape[0] == 0:
        raise DataError("X is empty: the pool has no rows to score")
    chunk_rows = check_chunk_rows(chunk_rows)
    if chunk_rows is None:
        chunk_rows = max(MIN_CHUNK_ROWS, 4 * CHUNK_BYTES // max(1, X.shape[1] * X.itemsize))
    out = np.empty((len(methods), X.shape[0]), dtype=np.float32)
    for lo in range(0, X.shape[0], chunk_rows):
        hi = min(X.shape[0], lo + chunk_rows)
        model_chunk_scores(model, X[lo:hi], methods, out[:, lo:hi], start=lo, name="X")
    return out[0] if single else out
