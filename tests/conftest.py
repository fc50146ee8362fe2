import importlib

import numba
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _no_small_kcenter_jobs(monkeypatch):
    """Every test pool would be a "small job" for k-center (full scans,
    ``_SMALL_JOB_WORK``): tests keep the default paths they were written for (the lazy
    path, the groups). The small path is tested through ``path="small"`` and by the tests
    that set the limits back."""
    module = importlib.import_module("fastal.diversity.kcenter")
    monkeypatch.setattr(module, "_SMALL_JOB_WORK", 0)
    monkeypatch.setattr(module, "_SCAN_FIRST_WORK", 0)  # likewise the scans without labels
    monkeypatch.setattr(module, "_COLD_JOB_WORK", 0)  # and the full scans of cold processes


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    """Run a test with 1 and with 2 Numba threads (more when the machine has them)."""
    before = numba.get_num_threads()
    numba.set_num_threads(min(request.param, numba.config.NUMBA_NUM_THREADS))
    yield request.param
    numba.set_num_threads(before)


def random_probs(rng, n, c, dtype=np.float32, concentration=1.0):
    """Rows drawn from a Dirichlet, renormalised in the target dtype."""
    p = rng.dirichlet(np.full(c, concentration), size=n)
    return (p / p.sum(axis=1, keepdims=True)).astype(dtype)


def pytest_terminal_summary(terminalreporter):
    """Print how many bad inputs the corpus tried, per class (tests/test_bad_inputs.py)."""
    import sys

    module = sys.modules.get("test_bad_inputs")
    lines = module.summary_lines() if module is not None else []
    if lines:
        terminalreporter.section("bad-input corpus")
        for line in lines:
            terminalreporter.write_line(line)
