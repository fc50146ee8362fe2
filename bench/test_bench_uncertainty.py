"""pytest-benchmark suite: fastal vs the NumPy formula, per method, on the same data.

    python -m pytest bench/test_bench_uncertainty.py --benchmark-only \
        --benchmark-group-by=param:method --benchmark-columns=min,median,ops

Groups put fastal and NumPy for one method side by side; compare the ``ops`` (calls/s)
columns as ratios. Sizes are kept moderate (1M x 10, 200k x 100) so the suite runs in about
a minute; bench/compare_uncertainty.py has the full-size table with bandwidth and peers.
"""

import numpy as np
import pytest

import fastal
from compare_uncertainty import make_probs, numpy_formula

SIZES = {"1Mx10": (1_000_000, 10), "200kx100": (200_000, 100)}


@pytest.fixture(scope="module", params=list(SIZES))
def probs(request):
    return make_probs(*SIZES[request.param])


@pytest.mark.parametrize("method", fastal.UNCERTAINTY_METHODS)
def test_fastal(benchmark, probs, method):
    fastal.score(probs[:100], method)
    benchmark(fastal.score, probs, method)


@pytest.mark.parametrize("method", fastal.UNCERTAINTY_METHODS)
def test_numpy(benchmark, probs, method):
    formula = numpy_formula(method)
    with np.errstate(all="ignore"):
        benchmark(formula, probs)


@pytest.mark.parametrize("method", ["margin", "entropy"])
def test_fastal_top_k(benchmark, probs, method):
    fastal.top_k(probs[:100], 10, method)
    benchmark(fastal.top_k, probs, 1000, method)
