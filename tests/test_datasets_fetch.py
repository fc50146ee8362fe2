"""Tests for fastal.datasets._fetch: the cache directory and the cache argument."""

from __future__ import annotations

import pytest

from fastal import datasets
from fastal._errors import FastalError


# ---------------------------------------------------------------------------
# cache_dir
# ---------------------------------------------------------------------------


def test_cache_dir_uses_env_var(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTAL_DATA", str(tmp_path / "data"))
    assert datasets.cache_dir() == tmp_path / "data"


@pytest.mark.parametrize("value", [None, ""])
def test_cache_dir_defaults_to_home_cache(monkeypatch, tmp_path, value):
    if value is None:
        monkeypatch.delenv("FASTAL_DATA", raising=False)
    else:
        monkeypatch.setenv("FASTAL_DATA", value)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert datasets.cache_dir() == tmp_path / ".cache" / "fastal"


def test_bad_cache_argument_is_named():
    with pytest.raises(FastalError, match="cache must be None, a str or a path-like"):
        datasets.load_fashion_mnist(cache=3, fetch=False)

