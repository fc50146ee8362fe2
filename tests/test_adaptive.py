"""fastal.adaptive: ``auto`` runs the strategy its rule names, with that strategy's picks."""

import numpy as np
import pytest

import fastal
from fastal import adaptive
from fastal.diversity.badge import badge


@pytest.fixture(scope="module")
def pool():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(20, 0.3), size=2000).astype(np.float32)
    embeddings = rng.normal(size=(2000, 5)).astype(np.float32)
    return probs, embeddings


def test_auto_runs_margin_without_embeddings(pool):
    probs, _ = pool
    sel = fastal.select(probs, 10, "auto", labeled=np.arange(30))
    assert sel.method == "auto" and sel.extra["chosen"] == "margin"
    np.testing.assert_array_equal(sel.indices,
                                  fastal.select(probs, 10, "margin", labeled=np.arange(30)).indices)


def test_auto_follows_its_rule(pool):
    probs, emb = pool
    few = np.arange(40)                        # 2 labels per class of 20
    sel = fastal.select(probs, 10, "auto", labeled=few, embeddings=emb, seed=3)
    chosen, _ = adaptive.choose(n_classes=20, n_labeled=40, k=10, has_embeddings=True)
    assert sel.extra["chosen"] == chosen
    expected = (badge(emb, probs, 10, labeled=few, seed=3) if chosen == "badge"
                else fastal.select(probs, 10, "margin", labeled=few))
    np.testing.assert_array_equal(sel.indices, expected.indices)
    many = np.arange(adaptive.LABELS_PER_CLASS * 20)   # enough labels per class: margin
    sel = fastal.select(probs, 10, "auto", labeled=many, embeddings=emb)
    assert sel.extra["chosen"] == "margin"


@pytest.mark.parametrize("n_classes, n_labeled, k, has_embeddings, expected", [
    (20, 100, 100, True, "badge"), (20, 100, 100, False, "margin"),
    (10, 100, 100, True, "margin"), (2, 10, 100, True, "margin"),
    (20, 20 * adaptive.LABELS_PER_CLASS, 100, True, "margin"),
    (20, 1000, 1000, True, "badge"),     # 50 per class, but a batch as large as the set
    (20, 2000, 1000, True, "margin"),    # a batch of half the labeled set: margin
    (10, 1000, 1000, True, "margin"),    # few classes: margin whatever the batch
])
def test_choose(n_classes, n_labeled, k, has_embeddings, expected):
    got, reason = adaptive.choose(n_classes=n_classes, n_labeled=n_labeled, k=k,
                                  has_embeddings=has_embeddings)
    assert got == expected and reason


def test_auto_in_a_loop_and_with_candidates(pool):
    from sklearn.linear_model import LogisticRegression

    probs, emb = pool
    y = probs.argmax(axis=1)
    loop = fastal.ActiveLoop(LogisticRegression(max_iter=200), emb, strategy="auto",
                             batch_size=20, seed_size=40, budget=100, seed=0)
    for batch in loop:
        loop.teach(batch.positions, y[batch.positions])
    assert loop.n_labeled == 100 and loop.stopped_by == "budget"
    from fastal.diversity.seals import KnnCandidates

    cands = KnnCandidates(emb, knn=10)
    sel = fastal.select(probs, 10, "auto", labeled=np.arange(40), embeddings=emb,
                        candidates=cands)
    assert set(sel.indices.tolist()) <= set(sel.extra["candidates"].tolist())


def test_auto_is_margin_pick_for_pick_when_its_rule_says_margin():
    # The benchmark reuses margin's runs for auto where the rule names margin in every
    # round; that is only right if the two runs are identical, which this checks.
    from sklearn.linear_model import LogisticRegression

    from fastal.datasets import load_digits

    X, y = load_digits(scale=True)
    result = fastal.simulate(X[:500], y[:500], X[1500:], y[1500:],
                             LogisticRegression(max_iter=200), strategies=["margin", "auto"],
                             seed_size=20, batch_size=20, budget=80, repeats=1,
                             embeddings=X[:500], stop_set_size=0, progress=False)
    assert adaptive.choose(n_classes=10, n_labeled=20, k=20, has_embeddings=True)[0] == "margin"
    np.testing.assert_array_equal(result.accuracy[0], result.accuracy[1])
