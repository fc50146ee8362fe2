"""Packaging metadata and ``python -m fastal`` (the wheel itself is built and smoke-tested in .ci/run)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fastal

ROOT = Path(__file__).resolve().parents[1]

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None


@pytest.fixture(scope="module")
def project():
    if tomllib is None:
        pytest.skip("tomllib needs Python 3.11+ (the metadata is the same on every version)")
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def _run(*argv):
    # PYTHONPATH: the subprocess imports the same fastal as the test run.
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)


def test_python_m_fastal_version_equals_fastal_version():
    result = _run(sys.executable, "-m", "fastal", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"fastal {fastal.__version__}"
    # (`fastal --version` from the installed console script is compared in .ci/smoke_wheel.)


def test_python_m_fastal_is_the_cli():
    result = _run(sys.executable, "-m", "fastal", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: fastal ")
    for command in ("score", "select", "init", "label", "demo"):
        assert re.search(rf"^\s+{command}\b", result.stdout, re.M), command
    # A user error is one line on stderr and exit code 2, as from `fastal`.
    bad = _run(sys.executable, "-m", "fastal", "score", str(ROOT / "no-such-pool.parquet"), "--k", "3")
    assert bad.returncode == 2
    assert bad.stderr.startswith("fastal: error: ") and bad.stderr.count("\n") == 1, bad.stderr


def test_version_is_declared_once(project):
    assert project["version"] == fastal.__version__


def test_python_classifiers_match_requires_python(project):
    floor = re.fullmatch(r">=\s*3\.(\d+)", project["requires-python"])
    assert floor, project["requires-python"]
    minors = sorted(int(c.rsplit(".", 1)[1]) for c in project["classifiers"]
                    if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c))
    assert minors, "no Programming Language :: Python :: 3.x classifiers"
    assert minors[0] == int(floor.group(1)), (minors, project["requires-python"])
    assert minors == list(range(minors[0], minors[-1] + 1)), f"gaps in {minors}"
    assert "Programming Language :: Python :: 3 :: Only" in project["classifiers"]


def test_license_is_spdx_with_its_file(project):
    # PEP 639: an SPDX expression plus the files; no License :: classifier beside it.
    assert project["license"] == "BSD-3-Clause"
    for name in project["license-files"]:
        assert (ROOT / name).is_file(), name
    assert "BSD 3-Clause" in (ROOT / "LICENSE").read_text()
    assert not [c for c in project["classifiers"] if c.startswith("License ::")]


def test_docs_extra_exists(project):
    extras = project["optional-dependencies"]
    assert any(req.startswith("sphinx") for req in extras["docs"])



def test_no_pandas_calls():
    # pandas is not a dependency. pyarrow's pandas bridges import it: with pyarrow 25 (the
    # newest for Python 3.10) DataType.to_pandas_dtype() raised ModuleNotFoundError and broke
    # `fastal score` on Parquet in a clean install (found by the wheel smoke test).
    pattern = re.compile(r"\bimport pandas\b|\bfrom pandas\b|\.to_pandas(_dtype)?\(")
    hits = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
            for path in sorted((ROOT / "fastal").rglob("*.py"))
            if "distributed" not in path.parts     # dask.dataframe brings pandas with the extra
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if pattern.search(line) and not line.lstrip().startswith("#")]
    assert not hits, "\n".join(hits)
