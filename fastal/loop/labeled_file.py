"""Simulating active learning on a labeled file a team already has (its own past labels).

:func:`simulate_file` reads a Parquet, Arrow IPC/Feather or CSV file with a label column and
features (numeric columns, or one embedding column holding a vector per row), holds out a
stratified test set, and runs :func:`fastal.simulate` with a standardised logistic
regression, so a team can see whether active learning pays on its data before buying
annotation. ``fastal simulate`` is this function on the command line.
"""

from __future__ import annotations

import os

import numpy as np

from .._errors import ArgumentError, DataError, FileError
from ._common import DEFAULT_STRATEGY

_PARQUET = (".parquet", ".pq")
_ARROW = (".arrow", ".feather", ".ipc")


def read_table(path):
    """A ``pyarrow.Table`` from a Parquet, Arrow IPC/Feather or CSV file (by suffix)."""
    import pyarrow as pa

    path = os.fspath(path)
    lower = path.lower()
    if not lower.endswith(_PARQUET + _ARROW + (".csv",)):
        raise ArgumentError(f"DATA must end in .parquet, .arrow, .feather, .ipc or .csv; got "
                            f"{path!r}")
    if not os.path.isfile(path):
        raise FileError(f"DATA {path!r} does not exist or is not a file")
    try:
        if lower.endswith(_PARQUET):
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if lower.endswith(_ARROW):
            import pyarrow.feather as feather

            return feather.read_table(path)
        import pyarrow.csv as pacsv

        return pacsv.read_csv(path)
    except (pa.ArrowException, OSError) as exc:
        raise FileError(f"cannot read DATA {path!r}: {exc}") from exc


def labeled_arrays(table, label_column, *, features=None, embedding_column=None):
    """``(X, y, feature_names)`` of a table: float32 features (N, d) and the labels (N,).

    ``features``: names of numeric columns; ``embedding_column``: one list column (a vector
    per row, all of one length). With neither, every numeric column but the label is used.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    names = table.column_names
    if label_column not in names:
        raise DataError(f"--label-column {label_column!r} is not a column of DATA; columns: "
                        f"{', '.join(names)}")
    labels = table.column(label_column)
    if labels.null_count:
        raise DataError(f"label column {label_column!r} has {labels.null_count} null values; "
                        "every row of DATA needs a label")
    y = np.asarray(labels.to_numpy(zero_copy_only=False))
    if features is not None and embedding_column is not None:
        raise ArgumentError("pass --features or --embedding-column, not both")
    if embedding_column is not None:
        if embedding_column not in names:
            raise DataError(f"--embedding-column {embedding_column!r} is not a column of "
                            f"DATA; columns: {', '.join(names)}")
        column = table.column(embedding_column).combine_chunks()
        if not (pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type)
                or pa.types.is_large_list(column.type)):
            raise DataError(f"embedding column {embedding_column!r} must hold one list of "
                            f"numbers per row; got type {column.type}")
        if column.null_count:
            raise DataError(f"embedding column {embedding_column!r} has {column.null_count} "
                            "null rows")
        lengths = np.asarray(pc.list_value_length(column).to_numpy(zero_copy_only=False))
        if lengths.size and (lengths.min() != lengths.max() or lengths[0] == 0):
            raise DataError(f"embedding column {embedding_column!r} must hold vectors of one "
                            f"length; got lengths {int(lengths.min())} to {int(lengths.max())}")
        values = column.flatten()
        if not (pa.types.is_floating(values.type) or pa.types.is_integer(values.type)):
            raise DataError(f"embedding column {embedding_column!r} must hold numbers; got "
                            f"{values.type}")
        X = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float32)
        X = X.reshape(len(column), int(lengths[0]) if lengths.size else 0)
        feature_names = [embedding_column]
    else:
        if features is None:
            features = [n for n in names if n != label_column
                        and (pa.types.is_floating(table.column(n).type)
                             or pa.types.is_integer(table.column(n).type))]
            if not features:
                raise DataError(f"DATA has no numeric column besides the label "
                                f"{label_column!r}; name them with --features or pass "
                                "--embedding-column")
        missing = [f for f in features if f not in names]
        if missing:
            raise DataError(f"--features {', '.join(missing)} not in DATA; columns: "
                            f"{', '.join(names)}")
        if label_column in features:
            raise ArgumentError(f"--features must not include the label column {label_column!r}")
        columns = []
        for f in features:
            col = table.column(f)
            if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)):
                raise DataError(f"feature column {f!r} must be numeric; got {col.type}")
            if col.null_count:
                raise DataError(f"feature column {f!r} has {col.null_count} null values")
            columns.append(np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float32))
        X = np.stack(columns, axis=1)
        feature_names = list(features)
    if not np.isfinite(X).all():
        row = int(np.flatnonzero(~np.isfinite(X).all(axis=1))[0])
        raise DataError(f"features must be finite; row {row} holds NaN or inf")
    if np.unique(y).size < 2:
        raise DataError(f"label column {label_column!r} must hold at least 2 classes; got "
                        f"{np.unique(y).size}")
    return X, y, feature_names


def _stratified_split(y, test_size, rng):
    test = np.zeros(y.shape[0], dtype=bool)
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        n = int(round(test_size * rows.size))
        if n == rows.size:
            n -= 1  # keep every class in the pool
        test[rng.choice(rows, size=n, replace=False)] = True
    return test


def simulate_file(path, label_column, *, features=None, embedding_column=None,
                  strategies=("random", DEFAULT_STRATEGY), test_size=0.2, seed_size=None,
                  batch_size=None, budget=None, repeats=3, seed=0, cost_per_label=None,
                  seconds_per_label=None, progress=True):
    """Simulate active learning on a labeled file (see the module docstring).

    Parameters
    ----------
    path : str or path-like
        Parquet, Arrow IPC/Feather or CSV file, one row per labeled example.
    label_column : str
    features, embedding_column
        See :func:`labeled_arrays`.
    strategies : sequence of str
        Random is added when missing (it is the baseline).
    test_size : float in (0, 1)
        Share of each class held out to measure accuracy (stratified, drawn with ``seed``).
    seed_size, batch_size, budget : int, optional
        Defaults: budget half the pool (at most 2,000), batches of budget / 20 (at least
        10), a seed set of one batch.
    repeats, seed, cost_per_label, seconds_per_label, progress
        As in :func:`fastal.simulate`.

    Returns
    -------
    SimulationResult
        ``params["features"]`` names the features, ``params["data"]`` the file.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .simulation import simulate

    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)) \
            or not 0.0 < float(test_size) < 1.0:
        raise ArgumentError(f"test_size must be a number in (0, 1); got {test_size!r}")
    table = read_table(path)
    X, y, feature_names = labeled_arrays(table, label_column, features=features,
                                         embedding_column=embedding_column)
    rng = np.random.default_rng(seed)
    test = _stratified_split(y, float(test_size), rng)
    X_pool, y_pool, X_test, y_test = X[~test], y[~test], X[test], y[test]
    n_pool = y_pool.shape[0]
    if budget is None:
        budget = min(2000, n_pool // 2)
    if batch_size is None:
        batch_size = max(10, budget // 20)
    if seed_size is None:
        seed_size = min(batch_size, budget)
    strategies = tuple(strategies)
    if "random" not in strategies:
        strategies = ("random",) + strategies
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = simulate(X_pool, y_pool, X_test, y_test, model, strategies=strategies,
                          seed_size=seed_size, batch_size=batch_size, budget=budget,
                          repeats=repeats, seed=seed, seed_strategy="random",
                          cost_per_label=cost_per_label, seconds_per_label=seconds_per_label,
                          progress=progress)
    result.params.update(data=os.fspath(path), features=feature_names,
                         test_size=float(test_size))
    return result
