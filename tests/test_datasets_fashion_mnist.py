"""Tests for fastal.datasets.fashion_mnist: the IDX parser and the Fashion-MNIST loader.

The parser and the fetch logic run on small synthetic files (and fake ``apt-get`` /
``dpkg-deb`` scripts) every time. The real-data tests read the data set from the cache and
skip with the command to fetch it when the cache is empty; no test downloads anything.
"""

from __future__ import annotations

import gzip
import os
import stat
import struct
from pathlib import Path

import numpy as np
import pytest

from fastal import datasets
from fastal._errors import FastalError
from fastal.datasets import fashion_mnist as fashion_module


# ---------------------------------------------------------------------------
# Helpers: an obviously correct IDX writer, written from the format's description
# ---------------------------------------------------------------------------

_TYPE_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}


def idx_bytes(array: np.ndarray) -> bytes:
    array = np.asarray(array)
    header = bytes([0, 0, _TYPE_CODES[array.dtype], array.ndim])
    header += b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, *, compress: bool = False) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path



# IDX parser on synthetic files
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", list(_TYPE_CODES))
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 5), (0, 28, 28)])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, dtype, shape, compress):
    rng = np.random.default_rng(0)
    array = (rng.standard_normal(shape) * 100).astype(dtype)
    path = write_idx(tmp_path / "a.idx", array, compress=compress)
    got = datasets.read_idx(path)
    assert got.dtype == np.dtype(dtype)  # native byte order, not big-endian
    assert got.dtype.isnative
    assert got.shape == shape
    np.testing.assert_array_equal(got, array)
    got[...] = 0  # must not raise: the result is writable


def test_read_idx_detects_gzip_by_content_not_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    plain_named_gz = write_idx(tmp_path / "x-idx2-ubyte.gz", array, compress=False)
    gz_named_plain = write_idx(tmp_path / "y-idx2-ubyte", array, compress=True)
    np.testing.assert_array_equal(datasets.read_idx(plain_named_gz), array)
    np.testing.assert_array_equal(datasets.read_idx(gz_named_plain), array)


def test_read_idx_known_bytes(tmp_path):
    # Hand-written file: 2 x 3 int16, big-endian, including a negative value.
    raw = bytes([0, 0, 0x0B, 2, 0, 0, 0, 2, 0, 0, 0, 3])
    raw += struct.pack(">6h", 1, -2, 300, 4, 5, -32768)
    (tmp_path / "k").write_bytes(raw)
    got = datasets.read_idx(tmp_path / "k")
    np.testing.assert_array_equal(got, [[1, -2, 300], [4, 5, -32768]])


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "truncated: expected a 4-byte magic number"),
        (b"\x00\x00", "truncated: expected a 4-byte magic number"),
        (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", "not an IDX file"),
        (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "not an IDX file"),
        (b"PK\x03\x04" + b"\x00" * 16, "not an IDX file"),
        (b"\x00\x00\x08\x00", "declares 0 dimensions"),
        (b"\x00\x00\x08\x03" + struct.pack(">I", 5) + b"\x00\x00", "truncated: header declares 3"),
        (b"\x00\x00\x08\x02" + struct.pack(">II", 3, 4) + bytes(11), "is truncated"),
        (b"\x00\x00\x0c\x01" + struct.pack(">I", 3) + bytes(8), "is truncated"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 3) + bytes(4), "bytes beyond the 3 bytes"),
        # A header claiming ~2**62 elements must fail cleanly, not allocate.
        (b"\x00\x00\x08\x02" + struct.pack(">II", 2**31, 2**31) + bytes(16), "truncated or corrupt"),
    ],
)
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_rejects_corrupt_files(tmp_path, raw, message, compress):
    path = tmp_path / "bad"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    if compress and raw == b"":
        message = "truncated"  # an empty gzip member decompresses to nothing
    with pytest.raises(FastalError, match=message) as info:
        datasets.read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_truncated_gzip_stream(tmp_path):
    array = np.random.default_rng(1).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    data = gzip.compress(idx_bytes(array))
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FastalError, match="truncated"):
        datasets.read_idx(path)


def test_read_idx_damaged_gzip_stream(tmp_path):
    array = np.arange(4000, dtype=np.int32)
    data = bytearray(gzip.compress(idx_bytes(array)))
    data[len(data) // 2] ^= 0xFF  # flip bits in the deflate stream
    path = tmp_path / "damaged.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(FastalError, match="corrupt or truncated"):
        datasets.read_idx(path)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FastalError, match="does not exist"):
        datasets.read_idx(tmp_path / "nope")


# ---------------------------------------------------------------------------
# Fashion-MNIST code paths on a tiny synthetic copy
# ---------------------------------------------------------------------------

_FASHION_INNER = Path("fashion-mnist-deb/usr/share/datasets/fashion-mnist")


def make_fake_fashion(directory: Path, *, n_train=30, n_test=20, compress=True, seed=0):
    """Write four tiny Fashion-MNIST-like IDX files; return the raw arrays."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        images[0, 0, 0], images[0, 0, 1] = 0, 255
        labels = (np.arange(n) % 10).astype(np.uint8)
        suffix = ".gz" if compress else ""
        write_idx(directory / f"{split}-images-idx3-ubyte{suffix}", images, compress=compress)
        write_idx(directory / f"{split}-labels-idx1-ubyte{suffix}", labels, compress=compress)
        arrays[split] = (images, labels)
    return arrays


@pytest.fixture
def no_system_fashion(monkeypatch, tmp_path):
    """Hide a system-wide install so that only the test's cache is looked at."""
    monkeypatch.setattr(fashion_module, "_FASHION_DEB_DIR", tmp_path / "no-system-install")


@pytest.mark.parametrize("compress", [True, False])
def test_load_fashion_mnist_from_cache(tmp_path, no_system_fashion, compress):
    arrays = make_fake_fashion(tmp_path / "cache" / _FASHION_INNER, compress=compress)
    X_train, y_train, X_test, y_test = datasets.load_fashion_mnist(tmp_path / "cache", fetch=False)
    assert X_train.shape == (30, 784) and X_test.shape == (20, 784)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    np.testing.assert_array_equal(
        X_train, arrays["train"][0].reshape(30, 784).astype(np.float32) / np.float32(255)
    )
    np.testing.assert_array_equal(y_test, arrays["t10k"][1])


def test_load_fashion_mnist_raw_and_subsets(tmp_path, no_system_fashion):
    arrays = make_fake_fashion(tmp_path / _FASHION_INNER)
    X, y = datasets.load_fashion_mnist(tmp_path, fetch=False, subset="test", scale=False)
    assert X.dtype == np.uint8 and X.shape == (20, 784)
    np.testing.assert_array_equal(X, arrays["t10k"][0].reshape(20, 784))
    X, y = datasets.load_fashion_mnist(tmp_path, fetch=False, subset="train")
    assert X.shape == (30, 784) and y.shape == (30,)
    X, y = datasets.load_fashion_mnist(tmp_path, fetch=False, subset="all", scale=False)
    assert X.shape == (50, 784)
    np.testing.assert_array_equal(y, np.concatenate([arrays["train"][1], arrays["t10k"][1]]))


def test_load_fashion_mnist_uses_cache_dir_env(monkeypatch, tmp_path, no_system_fashion):
    make_fake_fashion(tmp_path / _FASHION_INNER)
    monkeypatch.setenv("FASTAL_DATA", str(tmp_path))
    assert datasets.fetch_fashion_mnist() == tmp_path / _FASHION_INNER
    assert len(datasets.load_fashion_mnist(fetch=False)) == 4


def test_load_fashion_mnist_bad_subset():
    with pytest.raises(FastalError, match="subset must be one of None, 'train', 'test', 'all'; got 'val'"):
        datasets.load_fashion_mnist(subset="val", fetch=False)


def test_load_fashion_mnist_missing_without_fetch(tmp_path, no_system_fashion):
    with pytest.raises(FastalError, match="not on disk and fetch=False") as info:
        datasets.load_fashion_mnist(tmp_path, fetch=False)
    assert "apt-get install dataset-fashion-mnist" in str(info.value)


def test_load_fashion_mnist_rejects_inconsistent_files(tmp_path, no_system_fashion):
    directory = tmp_path / _FASHION_INNER
    make_fake_fashion(directory)
    write_idx(directory / "t10k-labels-idx1-ubyte.gz", np.zeros(19, np.uint8), compress=True)
    with pytest.raises(FastalError, match="20 images but t10k-labels-idx1-ubyte.gz has 19 labels"):
        datasets.load_fashion_mnist(tmp_path, fetch=False)
    write_idx(directory / "t10k-labels-idx1-ubyte.gz", np.full(20, 12, np.uint8), compress=True)
    with pytest.raises(FastalError, match="labels 0..9; got a maximum of 12"):
        datasets.load_fashion_mnist(tmp_path, fetch=False, subset="test")
    write_idx(directory / "t10k-images-idx3-ubyte.gz", np.zeros((20, 8, 8), np.uint8), compress=True)
    with pytest.raises(FastalError, match=r"shape \(n, 28, 28\); got uint8 of shape \(20, 8, 8\)"):
        datasets.load_fashion_mnist(tmp_path, fetch=False, subset="test")


def _fake_tool(bin_dir: Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def test_fetch_fashion_mnist_runs_apt_get_and_dpkg_deb(monkeypatch, tmp_path, no_system_fashion):
    # Fake apt-get writes a .deb into its cwd; fake dpkg-deb "extracts" prepared files.
    source = tmp_path / "source"
    make_fake_fashion(source)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_tool(
        bin_dir, "apt-get",
        '[ "$1" = download ] && [ "$2" = dataset-fashion-mnist ] || exit 3\n'
        "echo deb > dataset-fashion-mnist_0.0-1_all.deb\n",
    )
    _fake_tool(
        bin_dir, "dpkg-deb",
        '[ "$1" = -x ] && [ -f "$2" ] || exit 4\n'
        'mkdir -p "$3/usr/share/datasets/fashion-mnist"\n'
        'cp "$FAKE_SOURCE"/* "$3/usr/share/datasets/fashion-mnist/"\n',
    )
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), "/usr/bin", "/bin"]))
    monkeypatch.setenv("FAKE_SOURCE", str(source))
    cache = tmp_path / "cache"
    directory = datasets.fetch_fashion_mnist(cache)
    assert directory == cache / _FASHION_INNER
    # The .deb and the temporary folder are gone; only the extracted tree stays.
    assert sorted(p.name for p in cache.iterdir()) == ["fashion-mnist-deb"]
    X, y = datasets.load_fashion_mnist(cache, fetch=False, subset="train")
    assert X.shape == (30, 784)
    # A second call finds the files and runs nothing (apt-get would now fail).
    _fake_tool(bin_dir, "apt-get", "exit 9\n")
    assert datasets.fetch_fashion_mnist(cache) == directory


def test_fetch_fashion_mnist_reports_apt_get_failure(monkeypatch, tmp_path, no_system_fashion):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_tool(bin_dir, "apt-get", "echo 'E: Unable to locate package dataset-fashion-mnist' >&2\nexit 100\n")
    _fake_tool(bin_dir, "dpkg-deb", "exit 0\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(FastalError, match="exited with status 100") as info:
        datasets.fetch_fashion_mnist(tmp_path / "cache")
    message = str(info.value)
    assert "Unable to locate package" in message and "apt-get update" in message
    assert list((tmp_path / "cache").iterdir()) == []  # temporary folder cleaned up


def test_fetch_fashion_mnist_reports_bad_package(monkeypatch, tmp_path, no_system_fashion):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_tool(bin_dir, "apt-get", "echo deb > dataset-fashion-mnist_0.0-1_all.deb\n")
    _fake_tool(bin_dir, "dpkg-deb", 'mkdir -p "$3/usr/share/doc"\n')
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), "/usr/bin", "/bin"]))
    with pytest.raises(FastalError, match="does not hold the Fashion-MNIST IDX files"):
        datasets.fetch_fashion_mnist(tmp_path / "cache")


@pytest.mark.parametrize("missing", ["apt-get", "dpkg-deb"])
def test_fetch_fashion_mnist_without_tools(monkeypatch, tmp_path, no_system_fashion, missing):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in {"apt-get", "dpkg-deb"} - {missing}:
        _fake_tool(bin_dir, tool, "exit 0\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(FastalError, match=f"{missing} was not found on PATH"):
        datasets.fetch_fashion_mnist(tmp_path / "cache")



# ---------------------------------------------------------------------------
# Real data, read from the cache (skipped with the fetch command when absent)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fashion_mnist():
    directory = datasets._locate_fashion_mnist()
    if directory is None:
        pytest.skip(
            "Fashion-MNIST is not on disk (neither /usr/share/datasets/fashion-mnist "
            f"nor {datasets.cache_dir() / _FASHION_INNER}); fetch it with "
            "`python -c 'import fastal.datasets as d; d.fetch_fashion_mnist()'` "
            "or `apt-get install dataset-fashion-mnist`"
        )
    return datasets.load_fashion_mnist(fetch=False, scale=False)


def test_real_fashion_mnist(fashion_mnist):
    X_train, y_train, X_test, y_test = fashion_mnist
    assert X_train.shape == (60000, 784) and X_train.dtype == np.uint8
    assert X_test.shape == (10000, 784) and X_test.dtype == np.uint8
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    assert np.array_equal(np.bincount(y_train, minlength=10), np.full(10, 6000))
    assert np.array_equal(np.bincount(y_test, minlength=10), np.full(10, 1000))
    assert X_train.min() == 0 and X_train.max() == 255
    # The first training image is an ankle boot (class 9), as in the original release.
    assert y_train[0] == 9 and y_test[0] == 9
    # Images are not blank and the two splits differ.
    assert 50 < X_train.mean() < 100 and not np.array_equal(X_train[:10000], X_test)


def test_real_fashion_mnist_scaled_subset(fashion_mnist):
    X, y = datasets.load_fashion_mnist(fetch=False, subset="test")
    assert X.dtype == np.float32 and X.shape == (10000, 784)
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_array_equal(np.rint(X * 255).astype(np.uint8), fashion_mnist[2])
    np.testing.assert_array_equal(y, fashion_mnist[3])
