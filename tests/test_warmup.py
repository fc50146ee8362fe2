"""fastal.warmup / `fastal warmup`: fill Numba's cache; a read-only package uses the user-wide cache."""

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fastal
from fastal.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_warmup_reports_each_step(capsys):
    out = io.StringIO()
    steps = fastal.warmup(["margin"], n_classes=3, dtypes=("float32", "float64"), out=out)
    assert [(s.target, s.inputs) for s in steps] == [
        ("margin", "float32 probabilities"), ("margin", "float32 logits"),
        ("margin", "float32 linear head"), ("margin", "float64 probabilities"),
        ("margin", "float64 logits"), ("margin", "float64 linear head")]
    assert all(s.seconds >= 0 and s.compiled >= 0 and s.loaded >= 0 for s in steps)
    assert out.getvalue().count("\n") == 6
    # compiled or loaded once: a second call in this process touches no kernel again
    again = fastal.warmup(["margin"], n_classes=3, dtypes=("float32", "float64"))
    assert sum(s.compiled + s.loaded for s in again) == 0
    assert main(["warmup", "--methods", "margin", "--classes", "3"]) == 0
    assert "fastal warmup: compiled" in capsys.readouterr().out


@pytest.mark.parametrize("kwargs, message", [
    (dict(methods=["bogus"]), "methods: expected names from"),
    (dict(methods=[]), "got none"),
    (dict(methods=["margin"], n_classes=1), "n_classes: expected an integer >= 2"),
    (dict(methods=["margin"], n_classes=2.5), "n_classes"),
    (dict(methods=["margin"], dtypes=("float16",)), "dtypes: expected float32"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(fastal.ArgumentError, match=message):
        fastal.warmup(**kwargs)


def test_cli_bad_method_is_one_line(capsys):
    assert main(["warmup", "--methods", "margin,nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastal: error: methods:") and err.count("\n") == 1


_CHILD = """
import json, fastal
steps = fastal.warmup(["least_confidence"], n_classes=3)
print(json.dumps({"file": fastal.__file__, "cache": fastal._warmup.cache_dir(),
                  "compiled": sum(s.compiled for s in steps),
                  "loaded": sum(s.loaded for s in steps)}))
"""


def test_read_only_package_uses_the_user_wide_cache(tmp_path):
    # A package directory where no __pycache__ can be created (as in a read-only install:
    # a file stands where the directory would go, which stops even root): Numba must fall
    # back to its user-wide cache, and a second process must load instead of compiling.
    site = tmp_path / "site"
    shutil.copytree(REPO / "fastal", site / "fastal",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for directory in [site / "fastal", *(p for p in (site / "fastal").rglob("*") if p.is_dir())]:
        (directory / "__pycache__").write_text("not a directory")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(PYTHONPATH=str(site), XDG_CACHE_HOME=str(tmp_path / "xdg"),
               NUMBA_NUM_THREADS="1")
    runs = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", _CHILD], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    first, second = runs
    assert first["file"].startswith(str(site))
    assert first["cache"].startswith(str(tmp_path / "xdg" / "numba"))
    assert first["compiled"] >= 1
    assert second["compiled"] == 0 and second["loaded"] >= 1
