"""Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017) from Debian's ``dataset-fashion-mnist``
package, and the IDX file format it is stored in."""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import zlib
from pathlib import Path

import numpy as np

from fastal._errors import ArgumentError, FastalError, FileError

from ._fetch import _make_cache, _resolve_cache, _run

# ---------------------------------------------------------------------------
# IDX files (the MNIST format)
# ---------------------------------------------------------------------------

# Third byte of an IDX magic number -> big-endian element type.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
# Deflate cannot compress better than about 1032:1, so a gzip file of M bytes
# holds at most this many times M bytes. This bounds what a header may claim
# before we allocate memory for it (a corrupt header must not ask for terabytes).
_DEFLATE_MAX_RATIO = 1032


def _read_exact(handle, buffer: memoryview) -> int:
    """Fill ``buffer`` from ``handle``; return the number of bytes read."""
    filled = 0
    while filled < len(buffer):
        n = handle.readinto(buffer[filled:])
        if not n:
            break
        filled += n
    return filled


def read_idx(path) -> np.ndarray:
    """Read one IDX file (the MNIST format), plain or gzip-compressed.

    Parameters
    ----------
    path : str or path-like
        The file. Gzip compression is detected from the file's first two bytes,
        not from its name.

    Returns
    -------
    ndarray
        Array of the shape stored in the header, with the stored element type
        converted to native byte order (uint8 for MNIST-style files). The array
        is writable and owns its memory.

    Raises
    ------
    FastalError
        If the file is missing, the magic number is not an IDX one, the header
        is cut short, or the payload is shorter or longer than the header says.

    Notes
    -----
    The layout (LeCun et al., "The MNIST database") is a 4-byte magic number
    ``0x00 0x00 TYPE NDIM``, then NDIM big-endian uint32 sizes, then the
    elements in C order, big-endian. ``TYPE`` is 0x08 (uint8), 0x09 (int8),
    0x0B (int16), 0x0C (int32), 0x0D (float32) or 0x0E (float64).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from fastal.datasets import read_idx
    >>> path = os.path.join(tempfile.mkdtemp(), "a-idx2-ubyte")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6)))
    >>> read_idx(path)
    array([[0, 1, 2],
           [3, 4, 5]], dtype=uint8)
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            compressed = raw.read(2) == _GZIP_MAGIC
        file_size = path.stat().st_size
    except FileNotFoundError as exc:
        raise FileError(f"IDX file {path} does not exist") from exc
    except OSError as exc:
        raise FileError(f"cannot read IDX file {path}: {exc}") from exc

    opener = gzip.open if compressed else open
    kind = "gzip-compressed IDX file" if compressed else "IDX file"
    try:
        with opener(path, "rb") as handle:
            magic = handle.read(4)
            if len(magic) < 4:
                raise FileError(
                    f"{kind} {path} is truncated: expected a 4-byte magic number, "
                    f"got {len(magic)} bytes"
                )
            if magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_DTYPES:
                raise FileError(
                    f"{path} is not an IDX file: magic number 0x{magic.hex()} should be "
                    f"0x0000TTNN with type TT in "
                    f"{{{', '.join(f'{t:02x}' for t in sorted(_IDX_DTYPES))}}}"
                )
            ndim = magic[3]
            if ndim == 0:
                raise FileError(f"IDX file {path} declares 0 dimensions; expected at least 1")
            header = handle.read(4 * ndim)
            if len(header) < 4 * ndim:
                raise FileError(
                    f"{kind} {path} is truncated: header declares {ndim} dimensions "
                    f"({4 * ndim} bytes of sizes), got {len(header)} bytes"
                )
            shape = tuple(int(s) for s in np.frombuffer(header, dtype=">u4"))
            dtype = _IDX_DTYPES[magic[2]]
            n_bytes = int(np.prod(shape, dtype=np.uint64)) * dtype.itemsize
            available = (
                file_size * _DEFLATE_MAX_RATIO if compressed else file_size - 4 - 4 * ndim
            )
            if n_bytes > available:
                raise FileError(
                    f"{kind} {path} is truncated or corrupt: its header declares shape "
                    f"{shape} of {dtype.newbyteorder('=')} ({n_bytes} bytes of data), "
                    f"but the file holds at most {available} bytes of data"
                )
            data = np.empty(shape, dtype=dtype)
            got = _read_exact(handle, memoryview(data.reshape(-1).view(np.uint8)))
            if got != n_bytes:
                raise FileError(
                    f"{kind} {path} is truncated: header declares shape {shape} "
                    f"({n_bytes} bytes of data), but only {got} bytes follow"
                )
            if handle.read(1):
                raise FileError(
                    f"{kind} {path} is corrupt: it has bytes beyond the {n_bytes} bytes "
                    f"of data that its header (shape {shape}) declares"
                )
    except (EOFError, OSError, zlib.error) as exc:
        # gzip raises EOFError on a stream cut short, BadGzipFile (an OSError) on a
        # bad header or CRC, zlib.error on a damaged deflate stream.
        raise FileError(f"{kind} {path} is corrupt or truncated: {exc}") from exc
    return data.astype(dtype.newbyteorder("="), copy=False)


# ---------------------------------------------------------------------------
# Fashion-MNIST (Debian package dataset-fashion-mnist)
# ---------------------------------------------------------------------------

_FASHION_PACKAGE = "dataset-fashion-mnist"
# Where the Debian package installs the four gzip-compressed IDX files, relative
# to the root of the system (apt-get install) or of an extracted .deb.
_FASHION_PACKAGE_PATH = "usr/share/datasets/fashion-mnist"
_FASHION_DEB_DIR = Path("/") / _FASHION_PACKAGE_PATH
# Where fetch_fashion_mnist extracts the package inside the cache.
_FASHION_CACHE_SUBDIR = "fashion-mnist-deb"
_FASHION_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def _fashion_file(directory: Path, stem: str) -> Path | None:
    """The IDX file ``stem`` in ``directory``, compressed or not, or None."""
    for name in (stem + ".gz", stem):
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def _has_fashion_files(directory: Path) -> bool:
    return all(_fashion_file(directory, stem) for stem in _FASHION_FILES.values())


def _fashion_candidates(root: Path) -> list[Path]:
    return [
        _FASHION_DEB_DIR,
        root / _FASHION_CACHE_SUBDIR / _FASHION_PACKAGE_PATH,
    ]


def _locate_fashion_mnist(cache=None) -> Path | None:
    """Directory holding the four Fashion-MNIST IDX files, or None (no download)."""
    for directory in _fashion_candidates(_resolve_cache(cache)):
        if _has_fashion_files(directory):
            return directory
    return None


def fetch_fashion_mnist(cache=None) -> Path:
    """Find Fashion-MNIST on disk, downloading Debian's package if needed.

    Looks, in order, at

    1. ``/usr/share/datasets/fashion-mnist``, where ``apt-get install
       dataset-fashion-mnist`` puts the files;
    2. ``<cache>/fashion-mnist-deb/usr/share/datasets/fashion-mnist``, where an
       earlier call extracted the package;

    and otherwise runs, in a temporary directory inside ``<cache>``::

        apt-get download dataset-fashion-mnist
        dpkg-deb -x dataset-fashion-mnist_<version>_all.deb <tmp>/extract

    then moves the extracted tree to ``<cache>/fashion-mnist-deb`` and deletes
    the ``.deb`` (31 MB). Neither command needs root, but ``apt-get download``
    needs the package lists (``apt-get update``) to know the package.

    Parameters
    ----------
    cache : str, path-like or None, default=None
        Cache root; None means :func:`cache_dir`.

    Returns
    -------
    pathlib.Path
        Directory holding ``train-images-idx3-ubyte.gz``,
        ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz`` and
        ``t10k-labels-idx1-ubyte.gz`` (uncompressed names are accepted too).

    Raises
    ------
    FastalError
        If the files are not on disk and ``apt-get`` or ``dpkg-deb`` is missing
        or fails, or the package does not hold the expected files.
    """
    root = _resolve_cache(cache)
    found = _locate_fashion_mnist(root)
    if found is not None:
        return found

    what = f"cannot download Fashion-MNIST (Debian package {_FASHION_PACKAGE})"
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise FileError(
                f"{what}: {tool} was not found on PATH. Fashion-MNIST was looked for in "
                f"{' and '.join(str(p) for p in _fashion_candidates(root))}; on a "
                f"Debian-based system run `apt-get install {_FASHION_PACKAGE}`, or put the "
                f"four IDX files ({', '.join(_FASHION_FILES.values())}, optionally .gz) "
                f"in {_FASHION_DEB_DIR}"
            )

    _make_cache(root)
    target = root / _FASHION_CACHE_SUBDIR
    work = Path(tempfile.mkdtemp(prefix=".fashion-mnist-", dir=root))
    try:
        _run(
            ["apt-get", "download", _FASHION_PACKAGE],
            cwd=work,
            what=what,
            hint=(
                "If apt-get cannot locate the package, refresh the package lists "
                "with `apt-get update` (as root) and retry, or install it with "
                f"`apt-get install {_FASHION_PACKAGE}`."
            ),
        )
        debs = sorted(work.glob(f"{_FASHION_PACKAGE}_*.deb"))
        if not debs:
            raise FileError(
                f"{what}: `apt-get download {_FASHION_PACKAGE}` succeeded but left no "
                f"{_FASHION_PACKAGE}_*.deb in {work}"
            )
        extract = work / "extract"
        _run(
            ["dpkg-deb", "-x", str(debs[-1]), str(extract)],
            cwd=work,
            what=f"cannot extract {debs[-1].name}",
            hint="The downloaded package may be corrupt; delete it and retry.",
        )
        inner = extract / _FASHION_PACKAGE_PATH
        if not _has_fashion_files(inner):
            raise FileError(
                f"{debs[-1].name} does not hold the Fashion-MNIST IDX files at "
                f"/{_FASHION_PACKAGE_PATH}; found "
                f"{sorted(p.name for p in inner.iterdir()) if inner.is_dir() else 'no such folder'}"
            )
        if target.exists():
            # A half-written tree from an interrupted run: the checks above failed on it.
            shutil.rmtree(target)
        try:
            os.replace(extract, target)
        except OSError:
            # Another process finished first; its tree is as good as ours.
            if not _has_fashion_files(_fashion_candidates(root)[1]):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _fashion_candidates(root)[1]


def _read_fashion_split(directory: Path, split: str, scale: bool):
    images_path = _fashion_file(directory, _FASHION_FILES[f"{split}_images"])
    labels_path = _fashion_file(directory, _FASHION_FILES[f"{split}_labels"])
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise FileError(
            f"{images_path} should hold uint8 images of shape (n, 28, 28); "
            f"got {images.dtype} of shape {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise FileError(
            f"{labels_path} should hold uint8 labels of shape (n,); "
            f"got {labels.dtype} of shape {labels.shape}"
        )
    if labels.shape[0] != images.shape[0]:
        raise FileError(
            f"Fashion-MNIST {split} split is inconsistent: {images_path.name} has "
            f"{images.shape[0]} images but {labels_path.name} has {labels.shape[0]} labels"
        )
    if labels.size and labels.max() > 9:
        raise FileError(
            f"{labels_path} should hold labels 0..9; got a maximum of {int(labels.max())}"
        )
    X = images.reshape(images.shape[0], 28 * 28)
    if scale:
        X = X.astype(np.float32)
        X /= np.float32(255.0)
    return X, labels.astype(np.int64)


_SUBSETS = (None, "train", "test", "all")


def load_fashion_mnist(cache=None, *, fetch: bool = True, subset=None, scale: bool = True):
    """Load Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017) from its IDX files.

    Parameters
    ----------
    cache : str, path-like or None, default=None
        Cache root; None means :func:`cache_dir`. See :func:`fetch_fashion_mnist`
        for where the files are looked for.
    fetch : bool, default=True
        If the files are not on disk: download Debian's package when True,
        raise :class:`~fastal._errors.FastalError` when False.
    subset : {None, "train", "test", "all"}, default=None
        None returns both splits as a 4-tuple; "train" or "test" returns
        ``(X, y)`` of that split (and reads only its files); "all" returns
        ``(X, y)`` with the 60,000 training rows followed by the 10,000 test rows.
    scale : bool, default=True
        If True, pixels are float32 in [0, 1] (value / 255), ready for models
        and distances. If False, they are the raw uint8 values 0..255, which
        take a quarter of the memory (47 MB instead of 188 MB for the training
        split).

    Returns
    -------
    X_train : ndarray of shape (60000, 784)
        Flattened 28x28 images, float32 or uint8 (see ``scale``).
    y_train : ndarray of int64, shape (60000,)
        Labels 0..9, 6,000 per class; names in ``FASHION_MNIST_CLASSES``.
    X_test : ndarray of shape (10000, 784)
    y_test : ndarray of int64, shape (10000,)
        1,000 rows per class. Only with ``subset=None``; with a subset the
        result is ``(X, y)``.

    Raises
    ------
    FastalError
        If the files are missing and ``fetch=False``, the download fails, a file
        is corrupt or truncated, or ``subset`` is not one of the values above.

    Examples
    --------
    >>> from fastal.datasets import load_fashion_mnist
    >>> X_train, y_train, X_test, y_test = load_fashion_mnist()  # doctest: +SKIP
    >>> X_train.shape, X_train.dtype, X_test.shape                # doctest: +SKIP
    ((60000, 784), dtype('float32'), (10000, 784))
    """
    if subset not in _SUBSETS:
        raise ArgumentError(
            f"subset must be one of None, 'train', 'test', 'all'; got {subset!r}"
        )
    root = _resolve_cache(cache)
    if fetch:
        directory = fetch_fashion_mnist(root)
    else:
        directory = _locate_fashion_mnist(root)
        if directory is None:
            raise FileError(
                "Fashion-MNIST is not on disk and fetch=False: looked for "
                f"{', '.join(_FASHION_FILES.values())} (optionally .gz) in "
                f"{' and '.join(str(p) for p in _fashion_candidates(root))}. Call "
                "fetch_fashion_mnist() or load_fashion_mnist(fetch=True), or run "
                f"`apt-get install {_FASHION_PACKAGE}`"
            )
    if subset in ("train", "test"):
        return _read_fashion_split(directory, subset, scale)
    X_train, y_train = _read_fashion_split(directory, "train", scale)
    X_test, y_test = _read_fashion_split(directory, "test", scale)
    if subset == "all":
        return np.concatenate([X_train, X_test]), np.concatenate([y_train, y_test])
    return X_train, y_train, X_test, y_test
