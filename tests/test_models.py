"""fastal.models: linear heads, committees and adapters against NumPy logits + reference scoring."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, SGDClassifier

import fastal.scoring
from fastal import FastalError
from fastal.committee import COMMITTEE_METHODS, EGL_METHODS, score_committee
from fastal.models import (
    UNCERTAINTY_METHODS, Committee, LinearHead, ProbaModel, bootstrap_committee,
    check_model_methods, model_chunk_scores, score_model,
)

import reference as ref
import reference_committee as rc

TOL = dict(rtol=2e-5, atol=2e-6)


def blobs(rng, n, d, c, spread=1.5):
    centers = rng.standard_normal((c, d)) * spread
    y = rng.integers(0, c, size=n)
    return centers[y] + rng.standard_normal((n, d)), y


def test_method_names_match_scoring():
    assert UNCERTAINTY_METHODS == fastal.scoring.UNCERTAINTY_METHODS


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_head_matches_numpy_then_reference(dtype, bias, threads):
    rng = np.random.default_rng(1)
    d, c, n = 16, 5, 700
    W = rng.standard_normal((d, c))
    b = rng.standard_normal(c) if bias else None
    X = rng.standard_normal((n, d)).astype(dtype)
    head = LinearHead(W, b)
    logits = head.logits(X)
    assert logits.dtype == dtype and logits.shape == (n, c)
    want_logits = X.astype(np.float64) @ W + (b if bias else 0.0)
    np.testing.assert_allclose(logits, want_logits, rtol=1e-4 if dtype == np.float32 else 1e-12,
                               atol=1e-4 if dtype == np.float32 else 1e-12)
    methods = UNCERTAINTY_METHODS + EGL_METHODS
    got = score_model(head, X, methods, chunk_rows=128)
    for k, method in enumerate(UNCERTAINTY_METHODS):
        np.testing.assert_allclose(got[k], ref.uncertainty(logits, method, True), **TOL)
    probs = ref.softmax(logits)
    np.testing.assert_allclose(got[4], rc.egl_explicit(X, probs, include_bias=bias), **TOL)
    np.testing.assert_allclose(got[5], rc.egl_explicit(X, probs, bias_only=True), **TOL)
    # chunking does not change anything
    np.testing.assert_array_equal(score_model(head, X, methods, chunk_rows=7), got)
    np.testing.assert_array_equal(score_model(head, X, "margin"), got[2])


def test_logits_out_buffer():
    rng = np.random.default_rng(2)
    head = LinearHead(rng.standard_normal((4, 3)), rng.standard_normal(3))
    X = rng.standard_normal((10, 4)).astype(np.float32)
    out = np.empty((10, 3), dtype=np.float32)
    assert head.logits(X, out=out) is out
    np.testing.assert_allclose(out, X @ head.W + head.b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_from_sklearn_reproduces_predict_proba(n_classes):
    rng = np.random.default_rng(n_classes)
    X, y = blobs(rng, 400, 6, n_classes)
    est = LogisticRegression(max_iter=2000).fit(X, y)
    head = LinearHead.from_sklearn(est)
    assert head.W.shape == (6, n_classes)
    np.testing.assert_array_equal(head.classes, est.classes_)
    np.testing.assert_allclose(ref.softmax(head.logits(X)), est.predict_proba(X),
                               rtol=1e-10, atol=1e-12)
    got = score_model(head, X, "entropy")
    np.testing.assert_allclose(got, ref.entropy(est.predict_proba(X)), **TOL)
    # the same scores through the predict_proba adapter
    np.testing.assert_allclose(score_model(ProbaModel(est), X, "entropy"), got, **TOL)


def test_from_sklearn_without_intercept_and_other_linear_models():
    rng = np.random.default_rng(3)
    X, y = blobs(rng, 300, 5, 3)
    est = LogisticRegression(fit_intercept=False, max_iter=2000).fit(X, y)
    head = LinearHead.from_sklearn(est)
    assert head.b is None
    np.testing.assert_allclose(ref.softmax(head.logits(X)), est.predict_proba(X), atol=1e-12)
    sgd = SGDClassifier(random_state=0).fit(X, y)
    head = LinearHead.from_sklearn(sgd)
    np.testing.assert_allclose(head.logits(X), sgd.decision_function(X), atol=1e-10)
    with pytest.raises(FastalError, match="SGDClassifier has no coef_ .is it fitted"):
        LinearHead.from_sklearn(SGDClassifier())


def test_committee_of_heads_equals_stacked_logits(threads):
    rng = np.random.default_rng(4)
    d, c, m, n = 8, 4, 5, 600
    heads = [LinearHead(rng.standard_normal((d, c)), rng.standard_normal(c)) for _ in range(m)]
    committee = Committee(heads)
    X = rng.standard_normal((n, d)).astype(np.float32)
    logits = np.stack([h.logits(X) for h in heads])
    got = score_model(committee, X, COMMITTEE_METHODS, chunk_rows=100)
    np.testing.assert_allclose(got, score_committee(logits, COMMITTEE_METHODS, from_logits=True),
                               rtol=1e-4, atol=1e-5)
    for k, method in enumerate(COMMITTEE_METHODS):
        np.testing.assert_allclose(got[k], rc.committee(logits, method, True), rtol=1e-4,
                                   atol=2e-5, err_msg=method)
    np.testing.assert_array_equal(score_model(committee, X, COMMITTEE_METHODS, chunk_rows=1000),
                                  got)


def test_committee_of_proba_models():
    rng = np.random.default_rng(5)
    X, y = blobs(rng, 300, 4, 3)
    estimators = [LogisticRegression(C=c, max_iter=2000).fit(X, y) for c in (0.01, 1.0, 100.0)]
    committee = Committee([ProbaModel(e) for e in estimators])
    probs = np.stack([e.predict_proba(X) for e in estimators])
    np.testing.assert_allclose(score_model(committee, X, "bald"), rc.bald(probs), **TOL)
    heads = Committee([LinearHead.from_sklearn(e) for e in estimators])
    np.testing.assert_allclose(score_model(heads, X, "bald"), rc.bald(probs), **TOL)


def test_bootstrap_committee():
    rng = np.random.default_rng(6)
    X, y = blobs(rng, 120, 5, 4)
    labels = np.array(["cat", "dog", "eel", "fox"])[y]
    committee = bootstrap_committee(X, labels, 4, seed=0)
    assert committee.n_members == 4
    np.testing.assert_array_equal(committee.classes, ["cat", "dog", "eel", "fox"])
    for head in committee.members:
        np.testing.assert_array_equal(head.classes, committee.classes)
    again = bootstrap_committee(X, labels, 4, seed=0)
    np.testing.assert_array_equal(score_model(committee, X, "bald"), score_model(again, X, "bald"))
    scores = score_model(committee, X, COMMITTEE_METHODS)
    assert np.isfinite(scores).all() and (scores >= 0).all()
    # a rare class (1 example) is still present in every member's resample
    y_rare = y.copy()
    y_rare[y_rare == 3] = 2
    y_rare[0] = 3
    rare = bootstrap_committee(X, y_rare, 3, seed=1)
    assert all(h.n_classes == 4 for h in rare.members)


def test_bootstrap_committee_errors():
    rng = np.random.default_rng(7)
    X, y = blobs(rng, 50, 3, 2)
    with pytest.raises(FastalError, match="committee methods need at least 2 members; "
                                          "got n_members=1"):
        bootstrap_committee(X, y, 1)
    with pytest.raises(FastalError, match="y_labeled must contain at least 2 classes"):
        bootstrap_committee(X, np.zeros(50), 3)
    with pytest.raises(FastalError, match="y_labeled must be 1-D with one label per row"):
        bootstrap_committee(X, y[:10], 3)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(FastalError, match="X_labeled contains NaN or inf"):
        bootstrap_committee(bad, y, 3)
    # 40 singleton classes in 40 rows: a resample containing all of them never happens
    with pytest.raises(FastalError, match="bootstrap resamples of the 40 labeled rows all "
                                          "missed a class"):
        bootstrap_committee(rng.standard_normal((40, 3)), np.arange(40), 2, seed=0,
                            max_attempts=5)
    from sklearn.neighbors import KNeighborsClassifier
    with pytest.raises(FastalError, match="KNeighborsClassifier has no coef_"):
        bootstrap_committee(X, y, 2, estimator=KNeighborsClassifier())


def test_committee_alignment_errors():
    rng = np.random.default_rng(8)
    a = LinearHead(rng.standard_normal((3, 2)), classes=[0, 1])
    b = LinearHead(rng.standard_normal((3, 2)), classes=[1, 0])
    with pytest.raises(FastalError, match="every member must predict the same classes in "
                                          "the same order"):
        Committee([a, b])
    with pytest.raises(FastalError, match="committee methods need at least 2 members; got 1"):
        Committee([a])
    with pytest.raises(FastalError, match="same \\(features, classes\\)"):
        Committee([a, LinearHead(rng.standard_normal((4, 2)), classes=[0, 1])])
    with pytest.raises(FastalError, match="all be LinearHead or all be ProbaModel"):
        Committee([a, ProbaModel(LogisticRegression())])


def test_proba_model_needs_predict_proba():
    with pytest.raises(FastalError, match="estimator has no predict_proba"):
        ProbaModel(object())


def test_model_input_errors():
    rng = np.random.default_rng(9)
    head = LinearHead(rng.standard_normal((4, 3)), np.zeros(3))
    X = rng.standard_normal((20, 4)).astype(np.float32)
    with pytest.raises(FastalError, match="X has 5 features per row but the model expects 4"):
        score_model(head, rng.standard_normal((20, 5)), "entropy")
    bad = X.copy()
    bad[13, 2] = np.nan
    for methods in ("entropy", "margin", "expected_gradient_length",
                    ("ratio", "expected_gradient_length_bias")):
        with pytest.raises(FastalError, match="row 13 of X contains nan at column 2; "
                                              "embeddings must be finite|row 13 of X features "
                                              "contains nan at column 2"):
            score_model(head, bad, methods, chunk_rows=5)
    committee = Committee([head, LinearHead(rng.standard_normal((4, 3)), np.zeros(3))])
    with pytest.raises(FastalError, match="row 13 of X contains nan at column 2"):
        score_model(committee, bad, "bald")
    huge = LinearHead(np.full((4, 3), 1e300) * [[1, -1, 0]], None)
    with np.errstate(over="ignore"), \
            pytest.raises(FastalError, match="non-finite logits from finite embeddings"):
        score_model(huge, np.full((2, 4), 1e10), "entropy")
    with pytest.raises(FastalError, match="LinearHead method must be one of entropy"):
        score_model(head, X, "bald")
    with pytest.raises(FastalError, match="Committee method must be one of"):
        score_model(committee, X, "entropy")
    with pytest.raises(FastalError, match="ProbaModel method must be one of"):
        check_model_methods(ProbaModel(LogisticRegression()), "expected_gradient_length")
    with pytest.raises(FastalError, match="X must be 2-D"):
        score_model(head, X[0], "entropy")
    with pytest.raises(FastalError, match="X is empty"):
        score_model(head, X[:0], "entropy")
    with pytest.raises(FastalError, match="W must be .features, classes. with at least 1 feature "
                                          "and 2 classes"):
        LinearHead(np.ones((3, 1)))
    with pytest.raises(FastalError, match=r"b must have shape \(3,\)"):
        LinearHead(np.ones((4, 3)), np.ones(4))
    with pytest.raises(FastalError, match="W contains NaN or inf"):
        LinearHead(np.full((4, 3), np.nan))
    out = np.empty(20, dtype=np.float32)
    with pytest.raises(FastalError, match="model must be a LinearHead, Committee or ProbaModel"):
        model_chunk_scores(object(), X, ("entropy",), out)


def test_proba_model_bad_output():
    class Broken:
        def predict_proba(self, X):
            p = np.full((X.shape[0], 2), 0.5)
            p[1] = [0.9, 0.9]
            return p

    class Wrong:
        def predict_proba(self, X):
            return np.ones(X.shape[0])

    X = np.zeros((3, 2))
    with pytest.raises(FastalError, match=r"row 1 of X \(predict_proba output\) sums to 1.8"):
        score_model(ProbaModel(Broken()), X, "entropy")
    with pytest.raises(FastalError, match="predict_proba must return .rows, classes."):
        score_model(ProbaModel(Wrong()), X, "entropy")


def test_proba_model_scores_every_uncertainty_method():
    # ProbaModel goes through the same kernel dispatch as fastal.score on probabilities.
    from sklearn.linear_model import LogisticRegression

    import fastal
    from fastal.models import ProbaModel

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    est = LogisticRegression().fit(X, np.arange(200) % 3)
    for method in fastal.UNCERTAINTY_METHODS:
        np.testing.assert_array_equal(fastal.score(X, method, model=ProbaModel(est)),
                                      fastal.score(est.predict_proba(X), method))
