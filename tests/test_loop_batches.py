"""fastal.loop.batches: a strategy's batch and the seed set chosen without a model."""

import numpy as np
import pytest

from fastal.loop import initial_positions
from fastal.loop.batches import _select_batch
from loop_helpers import digits_pool


@pytest.fixture(scope="module")
def digits():
    return digits_pool()


def test_uncertainty_strategy_picks_top_scores(digits):
    X, y, _, _ = digits
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(10), size=X.shape[0])
    mask = np.zeros(X.shape[0], dtype=bool)
    mask[:300] = True
    picked = _select_batch("margin", probs=probs, X=X, labeled_mask=mask, k=5, rng=rng)
    top2 = np.sort(probs, axis=1)[:, -2:]
    margin = 1 - (top2[:, 1] - top2[:, 0])
    margin[mask] = -np.inf
    np.testing.assert_array_equal(picked, np.argsort(-margin, kind="stable")[:5])


def test_uncertain_kcenter_within_top_margin_candidates(digits):
    X, _, _, _ = digits
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(10), size=X.shape[0])
    mask = np.zeros(X.shape[0], dtype=bool)
    mask[::7] = True
    picked = _select_batch("uncertain_kcenter", probs=probs, X=X, labeled_mask=mask, k=6,
                           rng=rng, beta=3)
    candidates = _select_batch("margin", probs=probs, X=X, labeled_mask=mask, k=18, rng=rng)
    assert set(picked.tolist()) <= set(candidates.tolist()) and picked.size == 6


def test_stratified_seed_covers_every_class():
    y = np.repeat(np.arange(5), [50, 30, 10, 5, 5])
    pos = initial_positions("stratified", 20, n_pool=y.size, y=y, rng=np.random.default_rng(0))
    assert pos.size == 20 and np.unique(pos).size == 20
    assert set(np.unique(y[pos])) == set(range(5))
    assert np.bincount(y[pos]).tolist() == [10, 6, 2, 1, 1]

