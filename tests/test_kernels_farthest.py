"""The distributed k-center step (``fastal._kernels.farthest``): its distance is the single
machine's to the bit (not only its picks), on rows whose sums round."""

import numpy as np
import pytest

import fastal
from fastal._kernels import farthest as _kf
from tests import reference


def _inverse_norms(X):
    block = X.astype(np.float64)
    return 1.0 / np.sqrt(np.sum(block * block, axis=1))


def _greedy(X, k, cosine, labeled, split):
    """Greedy k-center through ``add_centers`` on the row ranges of ``split`` (the shards),
    by the driver's rule (the largest score, ties to the lower global row), the rows
    ``labeled`` the first centres. -> (picks, covering radius after each pick)."""
    inv_norm = _inverse_norms(X) if cosine else np.empty(0)
    parts = list(zip(split[:-1], split[1:]))
    mindist = np.full(X.shape[0], np.inf)
    mindist[labeled] = -1.0
    centres = X[labeled].astype(np.float64)
    if cosine:
        centres *= inv_norm[labeled][:, None]
    picks, radii = [], []
    best = np.empty(3)
    while True:
        answers = []
        for a, b in parts:
            _kf.add_centers(X[a:b], inv_norm[a:b] if cosine else inv_norm, cosine, centres,
                            mindist[a:b], np.empty(0), False, best)
            answers.append((best[0], a + int(best[1]), best[2]))
        if picks:
            radii.append(max(top for _, _, top in answers))
        if len(picks) == k:
            return np.array(picks), np.array(radii)
        row = max(answers, key=lambda t: (t[0], -t[1]))[1]
        picks.append(row)
        mindist[row] = -1.0
        centres = X[row:row + 1].astype(np.float64)
        if cosine:
            centres *= inv_norm[row]


@pytest.mark.parametrize("d", [1, 7, 32, 45, 100])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_distances_are_the_single_machines_to_the_bit(d, dtype, metric):
    rng = np.random.default_rng(d)
    X = (rng.standard_normal((5000, d)) * np.exp(rng.uniform(-3, 3, size=d))).astype(dtype)
    cosine = metric == "cosine"
    # one step's D against the defined order, replayed in NumPy
    inv_norm = _inverse_norms(X) if cosine else np.empty(0)
    centre = X[[17]].astype(np.float64) * (inv_norm[17] if cosine else 1.0)
    mindist = np.full(X.shape[0], np.inf)
    best = np.empty(3)
    _kf.add_centers(X, inv_norm, cosine, centre, mindist, np.empty(0), False, best)
    rows = X.astype(np.float64) * (inv_norm[:, None] if cosine else 1.0)
    sq = reference.lane_sum((rows - centre) ** 2)
    np.testing.assert_array_equal(mindist, 0.5 * sq if cosine else np.sqrt(sq))
    assert best[2] == mindist.max() and best[1] == np.argmax(mindist)
    # greedy on uneven shards: fastal.kcenter's picks and covering radii, exactly
    labeled = np.array([17, 1234, 4000])
    picks, radii = _greedy(X, 25, cosine, labeled, [0, 1234, 1235, 3001, 5000])
    sel = fastal.kcenter(X, 25, labeled=labeled, metric=metric)
    np.testing.assert_array_equal(picks, sel.indices)
    np.testing.assert_array_equal(radii, sel.extra["covering_radius"])
