"""fastal.committee against the NumPy reference: committees, votes, regression, EGL."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import fastal.scoring
from fastal import FastalError
from fastal.committee import (
    COMMITTEE_METHODS, EGL_METHODS, PROBABILITY_TOLERANCE, VOTE_METHODS, committee_chunk,
    egl_chunk, regression_chunk, score_committee, votes_chunk,
)

import reference as ref
import reference_committee as rc
from conftest import random_probs

METHODS = COMMITTEE_METHODS
TOL = dict(rtol=3e-6, atol=3e-6)


def random_members(rng, m, n, c, dtype=np.float32, concentration=0.5):
    return np.stack([random_probs(rng, n, c, dtype, concentration) for _ in range(m)])


def test_tolerance_matches_scoring():
    assert PROBABILITY_TOLERANCE == fastal.scoring.PROBABILITY_TOLERANCE


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, c", [(2, 2), (5, 3), (10, 10), (3, 200)])
@pytest.mark.parametrize("method", METHODS)
def test_probs_match_reference(method, m, c, dtype, threads):
    rng = np.random.default_rng(m * 1000 + c)
    members = random_members(rng, m, 300, c, dtype)
    got = score_committee(members, method)
    assert got.dtype == np.float32 and got.shape == (300,)
    np.testing.assert_allclose(got, rc.committee(members, method), **TOL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, c", [(2, 2), (7, 10), (3, 200)])
@pytest.mark.parametrize("method", METHODS)
def test_logits_match_reference(method, m, c, dtype, threads):
    rng = np.random.default_rng(m + c)
    logits = (rng.standard_normal((m, 300, c)) * 3).astype(dtype)
    got = score_committee(logits, method, from_logits=True)
    np.testing.assert_allclose(got, rc.committee(logits, method, True), **TOL)


def test_logits_and_probs_agree():
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((6, 400, 5)) * 2
    probs = rc.member_probs(logits, True)
    np.testing.assert_allclose(score_committee(logits, METHODS, from_logits=True),
                               score_committee(probs, METHODS), rtol=1e-5, atol=1e-6)


def test_extreme_logits_stay_finite():
    big = np.finfo(np.float32).max
    logits = np.array([[[big, -big, 0.0], [0.0, 0.0, 0.0]],
                       [[-big, big, 0.0], [1e30, -1e30, 0.0]]], dtype=np.float32)
    got = score_committee(logits, METHODS, from_logits=True)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[:, 0], [np.log(2), np.log(2), np.log(2), np.log(2), 0.5, 1.0],
                               atol=1e-6)
    np.testing.assert_allclose(got, np.stack([rc.committee(logits, m, True) for m in METHODS]),
                               atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_identical_members_do_not_disagree(dtype):
    rng = np.random.default_rng(1)
    one = random_probs(rng, 200, 6, dtype)
    members = np.stack([one] * 4)
    got = dict(zip(METHODS, score_committee(members, METHODS)))
    for method in ("bald", "kl_max", "variation_ratio", "vote_entropy"):
        np.testing.assert_allclose(got[method], 0.0, atol=1e-6)
    assert (got["variation_ratio"] == 0).all() and (got["vote_entropy"] == 0).all()
    np.testing.assert_allclose(got["consensus_entropy"], ref.entropy(one), **TOL)
    np.testing.assert_allclose(got["consensus_margin"], ref.margin(one), **TOL)


def test_one_hot_and_maximally_disagreeing_members():
    c = 4
    eye = np.eye(c)
    # Row 0: members one-hot on classes 0..3 (maximal disagreement); row 1: all one-hot on 2;
    # row 2: two members on class 1, two on class 3.
    members = np.stack([np.stack([eye[m], eye[2], eye[[1, 1, 3, 3][m]]]) for m in range(4)])
    got = dict(zip(METHODS, score_committee(members, METHODS)))
    log_c = np.log(c)
    expected = {"vote_entropy": [log_c, 0, np.log(2)], "consensus_entropy": [log_c, 0, np.log(2)],
                "bald": [log_c, 0, np.log(2)], "kl_max": [log_c, 0, np.log(2)],
                "variation_ratio": [0.75, 0, 0.5], "consensus_margin": [1.0, 0.0, 1.0]}
    for method in METHODS:
        np.testing.assert_allclose(got[method], expected[method], atol=1e-6, err_msg=method)
        np.testing.assert_allclose(got[method], rc.committee(members, method), atol=1e-6)


def test_argmax_ties_vote_for_the_lowest_class():
    # Each member ties between two classes; the votes must be the lower class of each tie.
    members = np.array([[[0.5, 0.5, 0.0]], [[0.0, 0.5, 0.5]], [[0.5, 0.0, 0.5]]])
    votes = [0, 1, 0]
    got = score_committee(members, VOTE_METHODS)
    want_entropy = rc.vote_entropy_from_votes(np.array(votes)[:, None], 3)
    np.testing.assert_allclose(got[0], want_entropy, atol=1e-7)
    np.testing.assert_allclose(got[1], 1 - 2 / 3, atol=1e-7)
    logits = np.log(np.where(members > 0, members, 1e-30))
    np.testing.assert_allclose(score_committee(logits, VOTE_METHODS, from_logits=True), got)


@pytest.mark.parametrize("m", [1 + 8, 4 + 3, 8 + 4 + 1])
def test_float32_argmax_ties_in_every_member_group(m):
    # The float32 kernel takes members eight, four, then one at a time; every group must
    # vote for the lowest class of a tie.
    rng = np.random.default_rng(m)
    c, n = 5, 400
    members = np.zeros((m, n, c), dtype=np.float32)
    for k in range(m):
        tied = np.sort(rng.choice(c, size=(n, 2), replace=True), axis=1)
        members[k, np.arange(n), tied[:, 0]] = 0.5
        members[k, np.arange(n), tied[:, 1]] += 0.5
    got = score_committee(members, VOTE_METHODS)
    votes = rc.votes_of(members)
    np.testing.assert_allclose(got[0], rc.vote_entropy_from_votes(votes, c), atol=1e-6)
    np.testing.assert_allclose(got[1], rc.variation_ratio_from_votes(votes, c), atol=1e-6)


def test_fused_equals_single_methods(threads):
    rng = np.random.default_rng(3)
    for from_logits in (False, True):
        members = (rng.standard_normal((5, 2000, 7)).astype(np.float32) if from_logits
                   else random_members(rng, 5, 2000, 7))
        fused = score_committee(members, METHODS, from_logits=from_logits)
        assert fused.shape == (len(METHODS), 2000)
        for k, method in enumerate(METHODS):
            np.testing.assert_array_equal(
                fused[k], score_committee(members, method, from_logits=from_logits))
        # order of the requested names is the order of the output rows
        rev = score_committee(members, METHODS[::-1], from_logits=from_logits)
        np.testing.assert_array_equal(rev, fused[::-1])


# Subsets of measures that skip work in the float32 probability kernel: consensus only (no
# per-member logarithm, no votes), votes only (no logarithm), BALD / KL-max (members kept).
SUBSETS = [("consensus_entropy",), ("consensus_margin",),
           ("consensus_entropy", "consensus_margin"), ("vote_entropy", "variation_ratio"),
           ("bald", "kl_max"), ("kl_max", "consensus_entropy"), ("bald", "vote_entropy"),
           ("consensus_margin", "kl_max", "variation_ratio")]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("subset", SUBSETS, ids="+".join)
def test_subsets_equal_fused_bitwise(subset, dtype, threads):
    # Each measure's arithmetic must not depend on which other measures are computed.
    rng = np.random.default_rng(31)
    members = random_members(rng, 6, 1500, 9, dtype)
    fused = dict(zip(METHODS, score_committee(members, METHODS)))
    got = score_committee(members, subset)
    for k, method in enumerate(subset):
        np.testing.assert_array_equal(got[k], fused[method], err_msg=method)
        np.testing.assert_allclose(got[k], rc.committee(members, method), **TOL)


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("subset", [(m,) for m in METHODS] + SUBSETS, ids="+".join)
def test_float32_kernels_write_every_requested_row(subset, from_logits):
    # The float32 kernels compile only the writing loops of the measures their flags name
    # (_needs): every requested measure must still overwrite every row of ``out``.
    rng = np.random.default_rng(37)
    members = random_members(rng, 5, 700, 10)
    if from_logits:
        members = np.log(members)
    for out_dtype in (np.float32, np.float64):
        out = np.full((len(subset), 700), -7.0, dtype=out_dtype)
        committee_chunk(members, subset, from_logits=from_logits, out=out)
        assert not (out == -7.0).any()
        want = score_committee(members, subset, from_logits=from_logits)
        np.testing.assert_array_equal(out.astype(np.float32), want)


@pytest.mark.parametrize("c", [2, 3, 10, 1000])
def test_float32_kernel_error_bound(c):
    # The float32 kernel (log32 terms, float64 sums) against the float64 kernel and the
    # float64 reference: the documented bound is about 3e-7 * (H + cross entropy), far
    # inside TOL; float32 output rounding is 6e-8 relative.
    rng = np.random.default_rng(c)
    members = random_members(rng, 4, 500, c, np.float32, concentration=0.3)
    out32 = np.empty((len(METHODS), 500))
    out64 = np.empty((len(METHODS), 500))
    committee_chunk(members, METHODS, out=out32)
    committee_chunk(members.astype(np.float64), METHODS, out=out64)
    scale = 1.0 + np.log(c)
    for k, method in enumerate(METHODS):
        want = rc.committee(members, method)
        assert np.abs(out32[k] - want).max() <= 1e-6 * scale, method
        assert np.abs(out32[k] - out64[k]).max() <= 1e-6 * scale, method


def test_float32_probabilities_in_strided_views():
    # The kernel reads a chunk as one flat view plus strides: rows that are not adjacent
    # (a GEMM output seen as (M, rows, C)), every other row, and a reversed class axis (a
    # negative stride, copied first) must all give the contiguous result.
    rng = np.random.default_rng(17)
    m, n, c = 4, 301, 6
    members = random_members(rng, m, n, c)
    base = score_committee(members, METHODS)
    interleaved = np.ascontiguousarray(members.transpose(1, 0, 2)).transpose(1, 0, 2)
    assert interleaved.strides[1] == m * c * 4
    views = {
        "interleaved": interleaved,
        "every other row": np.repeat(members, 2, axis=1)[:, ::2],
        "reversed classes": np.ascontiguousarray(members[:, :, ::-1])[:, :, ::-1],
        "rows of a larger pool": np.concatenate([members, members], axis=1)[:, :n],
        "read-only": np.array(members),
    }
    views["read-only"].setflags(write=False)
    for what, view in views.items():
        out = np.empty((len(METHODS), n), dtype=np.float32)
        committee_chunk(view, METHODS, out=out)
        np.testing.assert_array_equal(out, base, err_msg=what)
        for lo, hi in [(0, 1), (5, 77), (200, n)]:  # chunks of the view
            part = np.empty((len(METHODS), hi - lo), dtype=np.float32)
            committee_chunk(view[:, lo:hi], METHODS, out=part)
            np.testing.assert_array_equal(part, base[:, lo:hi], err_msg=what)


@pytest.mark.parametrize("subset", SUBSETS, ids="+".join)
def test_float32_invalid_member_rows_raise_for_every_subset(subset):
    # Skipping per-member work must not skip the checks of each member row.
    rng = np.random.default_rng(19)
    members = random_members(rng, 5, 600, 7)
    out = np.empty((len(subset), 600), dtype=np.float32)
    cases = [((3, 401, 2), np.nan, r"row 401 of data, member 3, contains nan at column 2"),
             ((1, 9, 6), np.inf, r"row 9 of data, member 1, contains inf at column 6"),
             ((4, 599, 0), -np.inf, r"row 599 of data, member 4, contains -inf"),
             ((0, 250, 1), 0.9, r"row 250 of data, member 0, sums to"),
             ((2, 0, 5), -0.01, r"row 0 of data, member 2, has a negative probability")]
    for (mm, r, j), value, message in cases:
        bad = members.copy()
        if value == -0.01:  # sums to 1: only the minimum check can catch it
            bad[mm, r] = 0.0
            bad[mm, r, j] = -0.01
            bad[mm, r, (j + 1) % 7] = 1.01
        else:
            bad[mm, r, j] = value
        with pytest.raises(FastalError, match=message):
            committee_chunk(bad, subset, out=out)


def test_aliases():
    rng = np.random.default_rng(4)
    members = random_members(rng, 3, 50, 4)
    np.testing.assert_array_equal(score_committee(members, "mutual_information"),
                                  score_committee(members, "bald"))
    np.testing.assert_array_equal(score_committee(members, "soft_vote_entropy"),
                                  score_committee(members, "consensus_entropy"))


@pytest.mark.parametrize("from_logits", [False, True])
def test_independent_of_chunk_size_and_threads(from_logits, threads):
    rng = np.random.default_rng(11)
    n = 3000
    members = (rng.standard_normal((4, n, 10)).astype(np.float32) if from_logits
               else random_members(rng, 4, n, 10))
    base = score_committee(members, METHODS, from_logits=from_logits, chunk_rows=n)
    for chunk_rows in (1, 7, 4096, None):
        got = score_committee(members, METHODS, from_logits=from_logits, chunk_rows=chunk_rows)
        np.testing.assert_array_equal(got, base)


def test_results_identical_across_thread_counts():
    import numba
    rng = np.random.default_rng(2)
    members = random_members(rng, 6, 20000, 10)
    votes = rng.integers(0, 9, size=(6, 20000))
    values = rng.standard_normal((6, 20000))
    results = {}
    for t in (1, 2):
        numba.set_num_threads(min(t, numba.config.NUMBA_NUM_THREADS))
        results[t] = (score_committee(members, METHODS), score_committee(votes, VOTE_METHODS),
                      score_committee(values, "committee_std"))
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for a, b in zip(results[1], results[2]):
        np.testing.assert_array_equal(a, b)


def test_list_of_members_equals_stacked_array():
    rng = np.random.default_rng(6)
    members = random_members(rng, 3, 500, 5)
    np.testing.assert_array_equal(score_committee(list(members), METHODS, chunk_rows=64),
                                  score_committee(members, METHODS))
    votes = rng.integers(0, 5, size=(3, 500))
    np.testing.assert_array_equal(score_committee(list(votes), VOTE_METHODS),
                                  score_committee(votes, VOTE_METHODS))


def test_chunk_accepts_strided_views():
    # The (rows, M*C) output of one GEMM seen as (M, rows, C) without a copy.
    rng = np.random.default_rng(7)
    m, n, c = 4, 333, 6
    flat = rng.standard_normal((n, m * c)).astype(np.float32)
    view = flat.reshape(n, m, c).transpose(1, 0, 2)
    assert not view.flags.c_contiguous
    out = np.empty((len(METHODS), n), dtype=np.float32)
    committee_chunk(view, METHODS, from_logits=True, out=out)
    np.testing.assert_array_equal(out, score_committee(np.ascontiguousarray(view), METHODS,
                                                       from_logits=True))
    single = np.empty(n, dtype=np.float64)
    committee_chunk(view[:, ::2], ("bald",), from_logits=True, out=single[: (n + 1) // 2])
    np.testing.assert_allclose(single[: (n + 1) // 2], rc.committee(view[:, ::2], "bald", True),
                               **TOL)


def test_chunk_errors_name_the_global_row_and_member():
    rng = np.random.default_rng(8)
    members = random_members(rng, 3, 20, 4)
    out = np.empty((2, 20), dtype=np.float32)
    bad = members.copy()
    bad[2, 5, 3] = np.nan
    with pytest.raises(FastalError, match=r"row 105 of pool, member 2, contains nan at column 3"):
        committee_chunk(bad, ("bald", "kl_max"), out=out, start=100, name="pool")
    bad = members.copy()
    bad[1, 7] = [0.5, 0.5, 0.5, 0.5]
    with pytest.raises(FastalError, match=r"row 7 of data, member 1, sums to 2"):
        committee_chunk(bad, ("bald", "kl_max"), out=out)
    bad = members.copy()
    bad[0, 3] = [1.5, -0.5, 0.0, 0.0]
    with pytest.raises(FastalError, match=r"member 0, has a negative probability -0.5 at col"):
        committee_chunk(bad, ("vote_entropy", "bald"), out=out)
    logits = rng.standard_normal((3, 20, 4))
    logits[1, 19, 0] = -np.inf
    with pytest.raises(FastalError, match=r"row 19 of data, member 1, contains -inf at column 0; "
                                          r"logits must be finite"):
        committee_chunk(logits, ("bald", "kl_max"), out=out, from_logits=True)
    with pytest.raises(FastalError, match=r"out must have shape \(2, 20\)"):
        committee_chunk(members, ("bald", "kl_max"), out=np.empty(20, np.float32))
    with pytest.raises(FastalError, match="out must be a float32 or float64 ndarray"):
        committee_chunk(members, ("bald",), out=np.empty(20, np.int64))


def test_row_within_tolerance_is_accepted():
    members = np.array([[[0.5 + 4e-4, 0.5]], [[1.0 + 5e-4, -5e-4]]])
    assert np.isfinite(score_committee(members, METHODS)).all()


# --------------------------------------------------------------------------- votes


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint16])
def test_votes_match_reference(dtype, threads):
    rng = np.random.default_rng(9)
    votes = rng.integers(0, 5, size=(7, 1000)).astype(dtype)
    got = score_committee(votes, VOTE_METHODS, chunk_rows=333)
    np.testing.assert_allclose(got[0], rc.vote_entropy_from_votes(votes), **TOL)
    np.testing.assert_allclose(got[1], rc.variation_ratio_from_votes(votes), **TOL)


def test_votes_agree_with_probability_committee():
    rng = np.random.default_rng(10)
    members = random_members(rng, 5, 800, 6)
    votes = rc.votes_of(members)
    np.testing.assert_allclose(score_committee(votes, VOTE_METHODS),
                               score_committee(members, VOTE_METHODS), atol=1e-7)


def test_votes_with_large_sparse_labels():
    votes = np.array([[10**9, 3, 3], [10**9, 3, 0], [5, 3, 7]])
    got = score_committee(votes, VOTE_METHODS)
    np.testing.assert_allclose(got[0], rc.vote_entropy_from_votes(np.array([[1, 3, 3], [1, 3, 0],
                                                                            [5, 3, 7]])), **TOL)
    np.testing.assert_allclose(got[1], [1 / 3, 0, 2 / 3], **TOL)


def test_votes_errors():
    votes = np.array([[0, 1, 2], [1, 1, 4]])
    with pytest.raises(FastalError, match=r"row 2 of votes, member 1, votes for class 4; "
                                          r"labels must be in \[0, 3\)"):
        score_committee(votes, "vote_entropy", n_classes=3)
    with pytest.raises(FastalError, match="votes must be class labels >= 0; got -4"):
        score_committee(-votes, "vote_entropy")
    with pytest.raises(FastalError, match="vote method must be one of vote_entropy, "
                                          "variation_ratio; got 'bald'"):
        score_committee(votes, "bald")
    with pytest.raises(FastalError, match="n_classes must be an integer >= 2"):
        score_committee(votes, "vote_entropy", n_classes=1.5)
    with pytest.raises(FastalError, match="from_logits applies to"):
        score_committee(votes, "vote_entropy", from_logits=True)
    out = np.empty(3, dtype=np.float32)
    with pytest.raises(FastalError, match="row 12 of v, member 0, votes for class -1"):
        votes_chunk(np.array([[-1, 0, 0], [0, 0, 0]]), ("vote_entropy",), 2, out, 12, "v")


# --------------------------------------------------------------------------- regression


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_committee_std_matches_numpy(dtype, threads):
    rng = np.random.default_rng(12)
    values = (rng.standard_normal((5, 3000)) * 100 + 1e4).astype(dtype)
    got = score_committee(values, "committee_std", chunk_rows=1000)
    np.testing.assert_allclose(got, rc.committee_std(values), rtol=1e-5)
    two = np.array([[1.0, 5.0], [3.0, 5.0]], dtype=dtype)
    np.testing.assert_array_equal(score_committee(two, "committee_std"), [1.0, 0.0])


def test_committee_std_errors():
    values = np.ones((3, 10))
    values[2, 4] = np.inf
    with pytest.raises(FastalError, match="row 4 of members, member 2, is inf; predictions "
                                          "must be finite"):
        score_committee(values, "committee_std")
    with pytest.raises(FastalError, match="regression method must be one of committee_std; "
                                          "got 'bald'"):
        score_committee(np.ones((3, 10)), "bald")
    with pytest.raises(FastalError, match="row 0 of p, member 0, is nan"):
        regression_chunk(np.full((2, 1), np.nan), np.empty(1, np.float32), name="p")


# --------------------------------------------------------------------------- EGL


@pytest.mark.parametrize("include_bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [2, 3, 7])
def test_egl_matches_explicit_gradients(c, dtype, include_bias, threads):
    rng = np.random.default_rng(c)
    n, d = 200, 5
    features = rng.standard_normal((n, d)).astype(dtype)
    probs = random_probs(rng, n, c, dtype, concentration=0.3)
    probs[0] = np.eye(c)[1]  # a one-hot row has zero expected gradient
    out = np.empty((2, n), dtype=np.float64)
    egl_chunk(features, probs, out, methods=EGL_METHODS, include_bias=include_bias)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out[0], rc.egl_explicit(features, probs, include_bias), **tol)
    np.testing.assert_allclose(out[1], rc.egl_explicit(features, probs, bias_only=True), **tol)
    assert out[0, 0] == 0.0 and out[1, 0] == 0.0
    logits = np.log(np.maximum(probs, 1e-30)).astype(dtype)
    out_logits = np.empty((2, n), dtype=np.float64)
    egl_chunk(features, logits, out_logits, methods=EGL_METHODS, include_bias=include_bias,
              from_logits=True)
    np.testing.assert_allclose(out_logits[:, 1:], out[:, 1:], rtol=1e-4, atol=1e-6)


def test_egl_is_accurate_near_one_hot():
    # p = (1 - eps, eps): ||p - e_0|| = sqrt(2) eps, ||p - e_1|| = sqrt(2) (1 - eps), so
    # EGL_bias = 2 sqrt(2) eps (1 - eps) exactly; the naive ||p||^2 - 2 p_y + 1 loses it.
    for eps in (1e-3, 1e-6, 1e-9):
        logits = np.array([[0.0, np.log(eps / (1 - eps))]])
        out = np.empty(1)
        egl_chunk(None, logits, out, methods=("expected_gradient_length_bias",),
                  from_logits=True)
        np.testing.assert_allclose(out[0], 2 * np.sqrt(2) * eps * (1 - eps), rtol=1e-9)


def test_egl_errors():
    features = np.ones((4, 3), dtype=np.float32)
    probs = np.full((4, 2), 0.5, dtype=np.float32)
    out = np.empty(4, dtype=np.float32)
    bad = features.copy()
    bad[2, 1] = np.nan
    with pytest.raises(FastalError, match="row 12 of pool features contains nan at column 1; "
                                          "embeddings must be finite"):
        egl_chunk(bad, probs, out, start=10, name="pool")
    bad = probs.copy()
    bad[3] = [0.9, 0.9]
    with pytest.raises(FastalError, match="row 3 of data sums to 1.8"):
        egl_chunk(features, bad, out)
    with pytest.raises(FastalError, match="expected_gradient_length needs features"):
        egl_chunk(None, probs, out)
    with pytest.raises(FastalError, match="features and probs must have the same rows"):
        egl_chunk(features[:3], probs, out)


# --------------------------------------------------------------------------- boundary


@pytest.mark.parametrize("members, message", [
    (np.full((1, 5, 3), 1 / 3), "committee methods need at least 2 members; got 1"),
    ([np.full((5, 3), 1 / 3)], "committee methods need at least 2 members; got 1"),
    ([], "members is an empty list"),
    (np.ones(5), r"members must be 3-D \(members, rows, classes\) or 2-D \(members, rows\); "
                 r"got shape \(5,\)"),
    (np.ones((2, 3, 4, 5)), "members must be 3-D"),
    (np.ones((2, 5, 1)), "members must have at least 2 classes per row"),
    (np.ones((2, 0, 3)), "members is empty"),
    ([np.full((5, 3), 1 / 3), np.full((4, 3), 1 / 3)],
     r"members\[0\] has shape \(5, 3\) but members\[1\] has shape \(4, 3\)"),
    ([np.full((5, 3), 0.5, np.float32), np.full((5, 3), 0.5)], "same dtype"),
    (np.ones((2, 5, 3), dtype=bool), "members must hold real numbers or integer votes"),
    (np.ones((2, 5, 3), dtype=complex), "members must hold real numbers or integer votes"),
    ([[["a", "b"]], [["c", "d"]]], "members must hold real numbers"),
    ([[[0.5, 0.5]], [[0.5]]], "every member must have the same shape"),
])
def test_bad_members_raise(members, message):
    with pytest.raises(FastalError, match=message):
        score_committee(members, "bald")


def test_bad_methods_and_arguments_raise():
    members = np.full((2, 5, 3), 1 / 3)
    with pytest.raises(FastalError, match="committee method must be one of vote_entropy, "
                                          "consensus_entropy, bald, kl_max, variation_ratio, "
                                          "consensus_margin .aliases: mutual_information, "
                                          "soft_vote_entropy.; got 'entropy'"):
        score_committee(members, "entropy")
    with pytest.raises(FastalError, match="requested twice"):
        score_committee(members, ["bald", "mutual_information"])
    with pytest.raises(FastalError, match="at least one committee method"):
        score_committee(members, [])
    with pytest.raises(FastalError, match="chunk_rows must be >= 1"):
        score_committee(members, "bald", chunk_rows=0)
    with pytest.raises(FastalError, match="n_classes applies to integer votes only"):
        score_committee(members, "bald", n_classes=3)
    bad = members.copy()
    bad[1, 3, 0] = np.nan
    with pytest.raises(FastalError, match="row 3 of members, member 1, contains nan"):
        score_committee(bad, "bald", chunk_rows=2)


def test_float16_and_integer_like_inputs_are_converted():
    rng = np.random.default_rng(13)
    members = random_members(rng, 3, 100, 4, np.float64)
    half = members.astype(np.float16)
    np.testing.assert_allclose(score_committee(half, METHODS, chunk_rows=30),
                               np.stack([rc.committee(half, m) for m in METHODS]), atol=3e-6)


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(2, 5), c=st.integers(2, 6),
    data=st.data(),
)
def test_hypothesis_random_committees(m, c, data):
    raw = data.draw(hnp.arrays(np.float64, (m, 8, c),
                               elements=st.floats(0, 1, allow_nan=False, width=32)))
    raw[..., 0] += 1e-3  # no all-zero rows
    members = raw / raw.sum(axis=2, keepdims=True)
    got = score_committee(members, METHODS)
    for k, method in enumerate(METHODS):
        np.testing.assert_allclose(got[k], rc.committee(members, method), rtol=1e-5, atol=1e-6,
                                   err_msg=method)
    logits = data.draw(hnp.arrays(np.float32, (m, 8, c),
                                  elements=st.floats(-1e4, 1e4, allow_nan=False, width=32)))
    got = score_committee(logits, METHODS, from_logits=True)
    assert np.isfinite(got).all()
    want = np.stack([rc.committee(logits, method, True) for method in METHODS])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-6)


def test_votes_from_float32_logits_closer_than_float32_resolution():
    # Logits 1e-40 apart give equal float32 probabilities; the vote must still go to the
    # larger logit (found by hypothesis: all-zero logits with one denormal entry).
    logits = np.zeros((3, 4, 2), dtype=np.float32)
    logits[0, 0, 1] = 1e-40            # member 0 votes class 1 in row 0
    logits[1, 1, 1] = 1e-40            # member 1 votes class 1 in row 1
    logits[:, 2, 1] = 1e-40            # everyone votes class 1 in row 2
    got = score_committee(logits, ("vote_entropy", "variation_ratio"), from_logits=True)
    want = np.stack([rc.committee(logits.astype(np.float64), m, True)
                     for m in ("vote_entropy", "variation_ratio")])
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert got[0, 0] > 0 and got[0, 2] == 0 and got[0, 3] == 0


@pytest.mark.parametrize("c", [9, 10, 12, 100])
@pytest.mark.parametrize("scale", [0.1, 3.0, 40.0])
def test_float32_logits_kernel_against_float64(scale, c):
    # The float32 logits kernel (softmax and measures in one pass over tiles of w-float
    # units: w = 1, 2, 4 for C = 9, 10, 12 and 100) against the float64 reference:
    # near-uniform, typical and very confident members, a uniform row, tied maxima (in one
    # lane and across lanes: the lowest class votes), logits at +-3e38 (z - max overflows),
    # strided classes and rows (units of the row stride, or w = 1 when it is odd), a block
    # boundary (300 rows = a full tile and a part).
    rng = np.random.default_rng(int(scale * 10) + c)
    logits = (rng.standard_normal((3, 300, c)) * scale).astype(np.float32)
    logits[:, 5] = 0.0                                   # every member uniform
    logits[1, 6, :2] = logits[1, 6].max() + 1            # a tie between the top two
    logits[0, 7, [3, c - 1]] = logits[0, 7].max() + 2    # a tie across lanes
    logits[2, 7, [c - 2, 1]] = logits[2, 7].max() + 2
    logits[2, 8] = 0
    logits[2, 8, :2] = [3e38, -3e38]
    logits[0, 9] = rng.standard_normal(c).astype(np.float32) * 30 + 80   # huge
    logits[1, 9] = rng.standard_normal(c).astype(np.float32) * 30 - 90   # very negative
    wide = np.empty((3, 300, 2 * c), dtype=np.float32)
    wide[:, :, ::2] = logits
    apart = np.empty((3, 600, c), dtype=np.float32)
    apart[:, ::2] = logits
    odd = np.empty((3, 300, c + 1), dtype=np.float32)
    odd[:, :, :c] = logits
    shifted = np.empty(logits.size + 1, dtype=np.float32)[1:].reshape(logits.shape)
    shifted[...] = logits                                # units not 16-byte aligned
    want = np.stack([rc.committee(logits.astype(np.float64), m, True) for m in METHODS])
    for source in (logits, wide[:, :, ::2], apart[:, ::2], odd[:, :, :c], shifted):
        got = score_committee(source, METHODS, from_logits=True)
        np.testing.assert_allclose(got, want, **TOL)
    together = score_committee(logits, METHODS, from_logits=True)
    for k, method in enumerate(METHODS):  # one measure alone: its own specialisation, and
        alone = score_committee(logits, method, from_logits=True)  # the same bits
        np.testing.assert_array_equal(alone, together[k], err_msg=method)
    for n in (1, 63, 64, 65, 257):  # the same bits in any block and chunk
        np.testing.assert_array_equal(score_committee(logits[:, :n], METHODS, from_logits=True),
                                      together[:, :n])
    assert score_committee(logits, "variation_ratio", from_logits=True)[5] == 0.0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("method", ["bald", "kl_max", "consensus_entropy", "consensus_margin"])
def test_float32_logits_kernel_names_a_non_finite_logit(bad, method):
    rng = np.random.default_rng(3)
    for c in (6, 7, 8):  # every lane layout (w = 2, 1, 4), the bad value in each lane
        for column in range(c):
            logits = rng.standard_normal((4, 500, c)).astype(np.float32)
            logits[3, 321, column] = bad
            with pytest.raises(FastalError, match="321"):
                score_committee(logits, method, from_logits=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_votes_alone_from_logits_skip_the_softmax(dtype):
    # Vote measures alone from logits take the argmax of the logits directly: the same
    # bits as when computed beside a softmax measure, and a clear error for a NaN/inf logit.
    rng = np.random.default_rng(9)
    logits = (rng.standard_normal((5, 700, 7)) * 3).astype(dtype)
    logits[:, 10] = 0.0                                  # all tied: lowest class votes
    logits[2, 11, 3] = logits[2, 11].max()               # a tie inside one member
    both = score_committee(logits, ("vote_entropy", "variation_ratio", "bald"),
                           from_logits=True)
    alone = score_committee(logits, ("vote_entropy", "variation_ratio"), from_logits=True)
    np.testing.assert_array_equal(alone, both[:2])
    view = np.repeat(logits, 2, axis=2)[:, :, ::2]       # strided classes
    np.testing.assert_array_equal(score_committee(view, "vote_entropy", from_logits=True),
                                  alone[0])
    for bad in (np.nan, np.inf, -np.inf):
        broken = logits.copy()
        broken[3, 123, 6] = bad
        with pytest.raises(FastalError, match="123"):
            score_committee(broken, "variation_ratio", from_logits=True)
