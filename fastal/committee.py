"""Query by committee and expected gradient length: chunk-level scoring and an in-memory driver.

The chunk functions (:func:`committee_chunk`, :func:`votes_chunk`, :func:`regression_chunk`,
:func:`egl_chunk`) are what a streaming driver calls once per chunk: they take arrays that
are already the right shape and dtype, write into a caller-allocated ``out`` and turn an
invalid row into a :class:`FastalError` naming its global position. :func:`score_committee`
is the in-memory convenience built on them; it does all the boundary validation.

Every measure is "higher = more informative" and uses natural logarithms.
"""

from __future__ import annotations

import numpy as np

from ._config import CHUNK_BYTES, MIN_CHUNK_ROWS
from ._errors import ArgumentError, DataError
from ._kernels import committee as _k
from .io import check_chunk_rows, compute_dtype, to_numpy

#: Measures of a committee of probability (or logit) outputs, (M, rows, C).
COMMITTEE_METHODS = ("vote_entropy", "consensus_entropy", "bald", "kl_max",
                     "variation_ratio", "consensus_margin")
#: Other accepted names -> canonical name. "Soft vote entropy" (the entropy of the
#: members' averaged class probabilities, Settles 2009) *is* the consensus entropy.
COMMITTEE_ALIASES = {"mutual_information": "bald", "soft_vote_entropy": "consensus_entropy"}
#: Measures available from hard votes only, (M, rows) integer labels.
VOTE_METHODS = ("vote_entropy", "variation_ratio")
#: Measures of a regression committee, (M, rows) real predictions.
REGRESSION_METHODS = ("committee_std",)
#: Expected gradient length of a softmax linear model (full gradient / logit-bias gradient).
EGL_METHODS = ("expected_gradient_length", "expected_gradient_length_bias")

from ._config import PROBABILITY_TOLERANCE  # noqa: E402  (the one tolerance, shared)
from ._validation import raise_bad_probability_row as _raise_bad_probability_row  # noqa: E402

_COMMITTEE_CODES = {
    "vote_entropy": _k.VOTE_ENTROPY,
    "consensus_entropy": _k.CONSENSUS_ENTROPY,
    "bald": _k.BALD,
    "kl_max": _k.KL_MAX,
    "variation_ratio": _k.VARIATION_RATIO,
    "consensus_margin": _k.CONSENSUS_MARGIN,
}
_EGL_CODES = {"expected_gradient_length": _k.EGL, "expected_gradient_length_bias": _k.EGL_BIAS}


# --------------------------------------------------------------------------- method names


def check_methods(methods, valid, kind="committee") -> tuple:
    """Canonical method names (aliases resolved) for a name or a sequence of names.

    Raises FastalError for an unknown name (listing the valid ones), an empty sequence or
    a repeated method.
    """
    names = (methods,) if isinstance(methods, str) else methods
    try:
        names = tuple(names)
    except TypeError:
        raise ArgumentError(
            f"method must be a name or a sequence of names; got {methods!r}") from None
    if not names:
        raise ArgumentError(f"methods must name at least one {kind} method; got {methods!r}")
    canonical = []
    for name in names:
        resolved = COMMITTEE_ALIASES.get(name, name) if isinstance(name, str) else name
        if not isinstance(resolved, str) or resolved not in valid:
            aliases = [a for a, c in COMMITTEE_ALIASES.items() if c in valid]
            listed = ", ".join(valid) + (f" (aliases: {', '.join(aliases)})" if aliases else "")
            raise ArgumentError(f"{kind} method must be one of {listed}; got {name!r}")
        if resolved in canonical:
            raise ArgumentError(f"method {name!r} is requested twice (as {resolved!r})")
        canonical.append(resolved)
    return tuple(canonical)


def _codes(methods, table) -> np.ndarray:
    return np.array([table[m] for m in methods], dtype=np.int64)


def _as_2d_out(out, n_methods, rows, what="out"):
    """``out`` as (n_methods, rows); a 1-D ``out`` is accepted for a single method."""
    if not isinstance(out, np.ndarray) or out.dtype not in (np.float32, np.float64):
        raise ArgumentError(f"{what} must be a float32 or float64 ndarray; got {type(out).__name__}"
                            + (f" of dtype {out.dtype}" if isinstance(out, np.ndarray) else ""))
    if out.ndim == 1 and n_methods == 1:
        out = out[np.newaxis, :]
    if out.shape != (n_methods, rows):
        raise ArgumentError(f"{what} must have shape ({n_methods}, {rows}) (methods, rows)"
                            + (f" or ({rows},)" if n_methods == 1 else "")
                            + f"; got {out.shape}")
    return out


# --------------------------------------------------------------------------- chunk level


def committee_chunk(members, methods, *, from_logits=False, out, start=0, name="data"):
    """Score one chunk of a committee of classifiers, all measures in one pass.

    Parameters
    ----------
    members : ndarray, shape (M, rows, C), float32 or float64
        Class probabilities (or logits with ``from_logits``) of each of the M members for
        the chunk's rows; M >= 1 (the boundary requires 2), C >= 2. Strided views are fine
        (e.g. ``logits.reshape(rows, M, C).transpose(1, 0, 2)``).
    methods : tuple of str
        Canonical names from :data:`COMMITTEE_METHODS` (see :func:`check_methods`).
    from_logits : bool, default False
        Apply a stable log-softmax to each member row inside the kernel.
    out : ndarray, shape (len(methods), rows), float32 or float64
        Written in place: ``out[k]`` is measure ``methods[k]``. A 1-D ``out`` of length
        rows is accepted when one method is asked for.
    start : int
        Global position of the chunk's first row (for error messages).
    name : str
        What the data is called in error messages.

    Raises
    ------
    FastalError
        A member row with a NaN/inf entry, a negative probability (below
        ``-PROBABILITY_TOLERANCE``) or a sum away from 1; the message names the global
        row ``start + r``, the member and the column.

    Notes
    -----
    With p_m the distribution of member m, q = (1/M) sum_m p_m, H the entropy in nats
    and v_k the fraction of members whose argmax (lowest class on ties) is k:

    - vote_entropy: -sum_k v_k log v_k (Dagan and Engelson, 1995), in [0, log min(M, C)];
    - consensus_entropy: H(q) (the "soft vote entropy"), in [0, log C];
    - bald: H(q) - (1/M) sum_m H(p_m) = (1/M) sum_m KL(p_m || q), the mutual information
      between label and member (Houlsby et al., 2011; McCallum and Nigam's average KL);
    - kl_max: max_m KL(p_m || q) (modAL's KL-max disagreement);
    - variation_ratio: 1 - max_k v_k (Freeman, 1965), in [0, 1 - 1/M];
    - consensus_margin: 1 - (q_(1) - q_(2)), in [0, 1].

    bald and kl_max are clamped at 0 (rounding can make them -1e-17 for equal members).
    """
    out2 = _as_2d_out(out, len(methods), members.shape[1])
    codes = _codes(methods, _COMMITTEE_CODES)
    logits = members
    if from_logits and all(m in VOTE_METHODS for m in methods):
        # votes need only each member's argmax, which softmax keeps: no softmax at all
        votes = np.empty(members.shape[:2], dtype=np.int64)
        _k.votes_from_logits(members, votes)
        n_bad = _k._vote_scores(votes, members.shape[2], codes, out2)
        if n_bad:
            _raise_bad_member_row(logits, out2[0], start, from_logits, name)
        return
    if members.dtype == np.float32 and from_logits:
        # float32 logits: softmax and measures in one pass over cached tiles (see the
        # kernel for the error bound); a row with a NaN/inf logit comes back as NaN.
        flat, member_stride, row_stride = _flat_view(members)
        n_members, n_rows, n_classes = members.shape
        n_bad = _k._committee_logits32(flat, n_members, n_rows, n_classes, member_stride,
                                       row_stride, codes, out2)
    elif members.dtype == np.float32:
        # float32 probabilities: float32 logarithms vectorised across rows (see the kernel
        # for the error bound); only the work the requested measures need is done.
        flat, member_stride, row_stride = _flat_view(members)
        n_members, n_rows, n_classes = members.shape
        n_bad = _k._committee_probs32(flat, n_members, n_rows, n_classes, member_stride,
                                      row_stride, codes, PROBABILITY_TOLERANCE,
                                      _k.block_rows32(n_members, n_classes), out2)
    else:
        n_bad = _k._committee_scores(members, codes, bool(from_logits), PROBABILITY_TOLERANCE,
                                     out2)
    if n_bad:
        _raise_bad_member_row(logits, out2[0], start, from_logits, name)


def _flat_view(members):
    """(flat, member_stride, row_stride): members (M, rows, C) as a 1-D contiguous view.

    ``members[m, r, j] == flat[m * member_stride + r * row_stride + j]``. ``flat`` spans
    the memory from the first to the last element of ``members`` (all inside the array's
    own buffer), so a strided slice of a larger array needs no copy; only members whose
    classes are not adjacent in memory (or with negative strides) are copied first.
    """
    item = members.itemsize
    strides = members.strides
    if (strides[2] != item or strides[0] < 0 or strides[1] < 0
            or strides[0] % item or strides[1] % item or not members.flags.writeable):
        members = np.ascontiguousarray(members)
        strides = members.strides
    n_members, n_rows, n_classes = members.shape
    member_stride, row_stride = strides[0] // item, strides[1] // item
    extent = (n_members - 1) * member_stride + (n_rows - 1) * row_stride + n_classes
    # Writeable only so that the kernel sees one array type for this view and its own
    # copies; the kernel never writes to it (read-only inputs are copied above).
    flat = np.lib.stride_tricks.as_strided(members, shape=(extent,), strides=(item,))
    return flat, member_stride, row_stride


def votes_chunk(votes, methods, n_classes, out, start=0, name="votes"):
    """Vote entropy / variation ratio of one chunk of hard votes.

    Parameters
    ----------
    votes : ndarray, shape (M, rows), any integer dtype
        Class label voted by each member for each row (int64 is used as is; other integer
        dtypes are widened to int64 for the kernel).
    methods : tuple of str
        Canonical names from :data:`VOTE_METHODS`.
    n_classes : int
        Labels must lie in [0, n_classes).
    out : ndarray, shape (len(methods), rows) (or (rows,) for one method), float32/float64
    start, name
        Global position of the first row and the data's name, for error messages.

    Raises
    ------
    FastalError
        A label outside [0, n_classes), naming the global row, member and label.

    Notes
    -----
    Same formulas as :func:`committee_chunk`; the votes are taken as given.
    """
    out2 = _as_2d_out(out, len(methods), votes.shape[1])
    # One compiled kernel: other integer dtypes are widened (a copy of M x rows labels).
    # uint64 labels above 2**63 wrap negative and are reported as out of range.
    labels = votes if votes.dtype == np.int64 else votes.astype(np.int64)
    n_bad = _k._vote_scores(labels, int(n_classes), _codes(methods, _COMMITTEE_CODES), out2)
    if n_bad:
        r = int(np.flatnonzero(np.isnan(out2[0]))[0])
        column = votes[:, r]
        m = int(np.flatnonzero((column < 0) | (column >= n_classes))[0])
        raise DataError(
            f"row {start + r} of {name}, member {m}, votes for class {int(column[m])}; "
            f"labels must be in [0, {int(n_classes)})")


def regression_chunk(values, out, start=0, name="predictions"):
    """Committee standard deviation of one chunk of regression predictions.

    Parameters
    ----------
    values : ndarray, shape (M, rows), float32 or float64
        Prediction of each member for each row.
    out : ndarray, shape (rows,) or (1, rows), float32 or float64
        Receives sqrt((1/M) sum_m (y_m - mean_m y_m)^2): the population standard
        deviation (ddof=0), so two members at a and b score |a - b| / 2.
    start, name
        For error messages.

    Raises
    ------
    FastalError
        A NaN or inf prediction, naming the global row and the member.
    """
    out1 = _as_2d_out(out, 1, values.shape[1])[0]
    n_bad = _k._committee_std(values, out1)
    if n_bad:
        r = int(np.flatnonzero(np.isnan(out1))[0])
        column = values[:, r]
        bad = np.flatnonzero(~np.isfinite(column))
        if bad.size:
            m = int(bad[0])
            raise DataError(f"row {start + r} of {name}, member {m}, is {column[m]}; "
                            f"predictions must be finite")
        raise DataError(f"row {start + r} of {name}: the spread of the predictions "
                        f"overflows float64")


def egl_chunk(features, probs, out, *, methods=("expected_gradient_length",),
              include_bias=True, from_logits=False, start=0, name="data"):
    """Expected gradient length of a softmax linear model for one chunk.

    Parameters
    ----------
    features : ndarray, shape (rows, d), float32 or float64, or None
        Inputs x of the linear layer (embeddings). May be None when only
        ``"expected_gradient_length_bias"`` is asked for.
    probs : ndarray, shape (rows, C), float32 or float64
        The model's class probabilities for those rows (logits with ``from_logits``).
    out : ndarray, shape (len(methods), rows) (or (rows,) for one method), float32/float64
    methods : tuple of str
        Canonical names from :data:`EGL_METHODS`.
    include_bias : bool, default True
        Whether the model has a bias: the gradient then includes d loss / d b = p - e_y,
        and ||x|| becomes ||[x, 1]||.
    from_logits : bool, default False
        ``probs`` holds logits; a stable softmax is applied in the kernel.
    start, name
        For error messages.

    Raises
    ------
    FastalError
        Non-finite features, non-finite logits, invalid probability rows (as
        :func:`committee_chunk`), mismatched row counts.

    Notes
    -----
    For logits z = W^T x + b and cross-entropy loss, the gradient for label y is
    (p - e_y) x^T w.r.t. W and p - e_y w.r.t. b, so its Frobenius norm is
    ||x~|| ||p - e_y|| with x~ = [x, 1] (or x without bias). EGL (Settles et al., 2008)
    is its expectation under the model:

    - expected_gradient_length: ||x~|| sum_y p_y ||p - e_y||;
    - expected_gradient_length_bias: sum_y p_y ||p - e_y|| (bias / last-layer logit
      gradient only; equals the full EGL divided by ||x~||);

    with ||p - e_y||^2 = ||p||^2 - 2 p_y + 1. The C x d gradient is never formed.
    """
    n_rows = probs.shape[0]
    out2 = _as_2d_out(out, len(methods), n_rows)
    if features is None:
        if "expected_gradient_length" in methods:
            raise ArgumentError("expected_gradient_length needs features (the embeddings x); "
                                "got features=None")
        features = np.empty((n_rows, 0), dtype=probs.dtype)
    elif features.shape[0] != n_rows:
        raise DataError(f"features and probs must have the same rows; got "
                        f"{features.shape[0]} and {n_rows}")
    n_bad = _k._egl_scores(features, probs, _codes(methods, _EGL_CODES), bool(from_logits),
                           bool(include_bias), PROBABILITY_TOLERANCE, out2)
    if n_bad:
        r = int(np.flatnonzero(np.isnan(out2[0]))[0])
        x = features[r].astype(np.float64)
        if not np.isfinite(x).all():
            j = int(np.flatnonzero(~np.isfinite(x))[0])
            raise DataError(f"row {start + r} of {name} features contains {x[j]} at "
                            f"column {j}; embeddings must be finite")
        _raise_bad_probability_row(probs[r], f"row {start + r} of {name}", from_logits)


# --------------------------------------------------------------------------- errors


def _raise_bad_member_row(members, scores, start, from_logits, name):
    r = int(np.flatnonzero(np.isnan(scores))[0])
    for m in range(members.shape[0]):
        row = members[m, r].astype(np.float64)
        if from_logits:
            ok = np.isfinite(row).all()
        else:
            ok = (np.isfinite(row).all() and row.min() >= -PROBABILITY_TOLERANCE
                  and abs(row.sum() - 1.0) <= PROBABILITY_TOLERANCE)
        if not ok:
            _raise_bad_probability_row(row, f"row {start + r} of {name}, member {m},",
                                       from_logits)
    raise DataError(f"row {start + r} of {name} could not be scored")  # pragma: no cover


# --------------------------------------------------------------------------- in memory


def _members_array(members):
    """(kind, array-or-list, M, N, C or None, dtype) after checking shapes and dtypes.

    A list/tuple of per-member arrays is kept as a list (stacked chunk by chunk, so the
    full (M, N, C) array is never built); anything else is viewed as one array.
    """
    if isinstance(members, (list, tuple)):
        if len(members) == 0:
            raise DataError("members is an empty list; committee methods need at least "
                            "2 members")
        arrays = [to_numpy(a, f"members[{m}]") for m, a in enumerate(members)]
        first = arrays[0].shape
        for m, a in enumerate(arrays):
            if a.shape != first:
                raise DataError(f"every member must have the same shape; members[0] has "
                                f"shape {first} but members[{m}] has shape {a.shape}")
            if a.dtype != arrays[0].dtype:
                raise DataError(f"every member must have the same dtype; members[0] is "
                                f"{arrays[0].dtype} but members[{m}] is {a.dtype}")
        if arrays[0].ndim not in (1, 2):
            raise DataError(f"each member must be (rows, classes) probabilities or (rows,) "
                            f"votes/predictions; members[0] has shape {first}")
        shape = (len(arrays),) + first
        dtype = arrays[0].dtype
        stacked = arrays
    else:
        stacked = to_numpy(members, "members")
        if stacked.ndim not in (2, 3):
            raise DataError(f"members must be 3-D (members, rows, classes) or 2-D "
                            f"(members, rows); got shape {stacked.shape}")
        shape = stacked.shape
        dtype = stacked.dtype
    if shape[0] < 2:
        raise DataError(f"committee methods need at least 2 members; got {shape[0]}")
    if shape[1] == 0:
        raise DataError("members is empty: the pool has no rows to score")
    return stacked, shape, np.dtype(dtype)


def _take(stacked, lo, hi, dtype):
    """Rows [lo, hi) of every member as one (M, rows[, C]) array of ``dtype``."""
    if isinstance(stacked, list):
        return np.stack([np.asarray(a[lo:hi], dtype=dtype) for a in stacked])
    block = stacked[:, lo:hi]
    return block if block.dtype == dtype else block.astype(dtype)


def score_committee(members, method_or_methods, *, from_logits=False, chunk_rows=None,
                    n_classes=None):
    """Committee disagreement of every row of an in-memory pool.

    Parameters
    ----------
    members : array-like or list of array-likes
        One of:

        - (M, N, C) float probabilities (or logits with ``from_logits``), or a list of M
          (N, C) arrays: methods from :data:`COMMITTEE_METHODS`;
        - (M, N) integer class votes (or a list of M (N,) integer arrays): methods from
          :data:`VOTE_METHODS`;
        - (M, N) float regression predictions: :data:`REGRESSION_METHODS`.
    method_or_methods : str or sequence of str
        One method, or several computed together in one pass (aliases:
        ``mutual_information`` for ``bald``, ``soft_vote_entropy`` for
        ``consensus_entropy``).
    from_logits : bool, default False
        For probability committees: the members' rows are logits.
    chunk_rows : int, optional
        Rows per chunk (default: about 4 MiB of input when chunks are copies, 64 MiB when
        they are views of ``members``). Results do not depend on it, nor on the number of
        threads.
    n_classes : int, optional
        For votes: labels must lie in [0, n_classes); default max label + 1.

    Returns
    -------
    scores : ndarray of float32, shape (N,) for one method name, (n_methods, N) for a
        sequence of names (in the order given).

    Raises
    ------
    FastalError
        Fewer than 2 members; wrong dimensions; members of different shapes; C < 2; no
        rows; a non-numeric dtype; a method that does not fit the input kind; NaN/inf
        values, invalid probability rows or labels outside [0, n_classes), naming the row
        and the member.

    Notes
    -----
    See :func:`committee_chunk` for the formulas; committee_std is the population
    standard deviation across members (ddof=0).

    Examples
    --------
    >>> import numpy as np
    >>> from fastal.committee import score_committee
    >>> members = np.array([[[0.9, 0.1]], [[0.1, 0.9]]], dtype=np.float32)
    >>> score_committee(members, ["vote_entropy", "variation_ratio"])
    array([[0.6931472],
           [0.5      ]], dtype=float32)
    """
    stacked, shape, dtype = _members_array(members)
    n_members, n_rows = shape[0], shape[1]
    if dtype.kind == "b" or dtype.kind not in "iuf":
        raise DataError(f"members must hold real numbers or integer votes; got dtype {dtype}")
    single = isinstance(method_or_methods, str)
    chunk_rows = check_chunk_rows(chunk_rows)
    if len(shape) == 3:
        kind = "committee"
        methods = check_methods(method_or_methods, COMMITTEE_METHODS)
        if shape[2] < 2:
            raise DataError(f"members must have at least 2 classes per row (members, rows, "
                            f"classes); got {shape[2]}")
        dtype = compute_dtype(dtype, "members")
    elif dtype.kind in "iu":
        kind = "votes"
        methods = check_methods(method_or_methods, VOTE_METHODS, "vote")
        if from_logits:
            raise ArgumentError("from_logits applies to (members, rows, classes) outputs; "
                                "members are integer votes")
        lowest = min(int(np.min(a)) for a in stacked) if isinstance(stacked, list) \
            else int(stacked.min())
        highest = max(int(np.max(a)) for a in stacked) if isinstance(stacked, list) \
            else int(stacked.max())
        if n_classes is None:
            if lowest < 0:
                raise DataError(f"votes must be class labels >= 0; got {lowest}")
            n_classes = highest + 1
        elif isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) \
                or n_classes < 2:
            raise ArgumentError(f"n_classes must be an integer >= 2; got {n_classes!r}")
    else:
        kind = "regression"
        methods = check_methods(method_or_methods, REGRESSION_METHODS, "regression")
        if from_logits:
            raise ArgumentError("from_logits applies to (members, rows, classes) outputs; "
                                "members are 2-D regression predictions")
        dtype = compute_dtype(dtype, "members")
    if kind != "votes" and n_classes is not None:
        raise ArgumentError("n_classes applies to integer votes only")

    width = shape[2] if len(shape) == 3 else 1
    if chunk_rows is None:
        # A chunk of an array already in the kernel's dtype is a view (no copy), so its size
        # only sets how often the per-call cost (dispatch, waking the threads: 0.1-0.2 ms
        # measured on a loaded 2-core machine) is paid; a copied chunk (a list of members,
        # another dtype) keeps the memory bound of CHUNK_BYTES.
        in_place = not isinstance(stacked, list) and stacked.dtype == dtype
        budget = CHUNK_BYTES * (16 if in_place else 1)
        chunk_rows = max(MIN_CHUNK_ROWS, budget // max(1, n_members * width * dtype.itemsize))
    out = np.empty((len(methods), n_rows), dtype=np.float32)
    for lo in range(0, n_rows, chunk_rows):
        hi = min(n_rows, lo + chunk_rows)
        block = _take(stacked, lo, hi, dtype)
        if kind == "committee":
            committee_chunk(block, methods, from_logits=from_logits, out=out[:, lo:hi],
                            start=lo, name="members")
        elif kind == "votes":
            votes_chunk(block, methods, n_classes, out[:, lo:hi], start=lo, name="votes")
        else:
            regression_chunk(block, out[:, lo:hi], start=lo, name="members")
    return out[0] if single else out
