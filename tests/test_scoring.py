"""fastal.score / fastal.top_k against the plain NumPy reference, on random and adversarial rows."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import fastal
from fastal import FastalError

import reference as ref
from conftest import random_probs

METHODS = fastal.UNCERTAINTY_METHODS


def tol(dtype):
    return dict(rtol=2e-6, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [2, 3, 4, 10, 100, 1000])
@pytest.mark.parametrize("method", METHODS)
def test_probs_match_reference(method, c, dtype, threads):
    rng = np.random.default_rng(c)
    probs = random_probs(rng, 500, c, dtype, concentration=0.3)
    got = fastal.score(probs, method)
    assert got.dtype == np.float32 and got.shape == (500,)
    np.testing.assert_allclose(got, ref.uncertainty(probs, method), rtol=3e-6, atol=3e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [2, 10, 1000])
@pytest.mark.parametrize("method", METHODS)
def test_logits_match_reference(method, c, dtype, threads):
    rng = np.random.default_rng(c + 1)
    logits = (rng.standard_normal((400, c)) * 4).astype(dtype)
    got = fastal.score(logits, method, from_logits=True)
    np.testing.assert_allclose(got, ref.uncertainty(logits, method, True), rtol=3e-6, atol=3e-6)


@pytest.mark.parametrize("method", METHODS)
def test_adversarial_probability_rows(method):
    rows = np.array([
        [1, 0, 0, 0, 0],                      # one-hot: least informative
        [0.2, 0.2, 0.2, 0.2, 0.2],            # uniform: most informative
        [0.4, 0.4, 0.1, 0.1, 0.0],            # tie at the top
        [0.0, 0.0, 0.0, 0.5, 0.5],            # tie at the end of the row
        [0.5, 0.5, 0.0, 0.0, 0.0],
        [0.999999, 1e-6, 0, 0, 0],
    ], dtype=np.float64)
    for dtype in (np.float32, np.float64):
        got = fastal.score(rows.astype(dtype), method)
        np.testing.assert_allclose(got, ref.uncertainty(rows.astype(dtype), method), atol=1e-6)
    got = fastal.score(rows, method)
    assert got[0] == 0.0
    assert got[1] == pytest.approx({"entropy": np.log(5), "least_confidence": 0.8,
                                    "margin": 1.0, "ratio": 1.0}[method])
    if method in ("margin", "ratio"):
        assert got[2] == 1.0 and got[3] == 1.0


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("scale", [1e-30, 1e-3, 1.0, 1e3, 1e30])
def test_tiny_and_huge_logits(method, scale):
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        logits = (rng.standard_normal((64, 7)) * scale).astype(dtype)
        logits[0] = logits[0, 0]  # a constant row: uniform distribution
        got = fastal.score(logits, method, from_logits=True)
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, ref.uncertainty(logits, method, True), rtol=3e-6, atol=3e-6)


@pytest.mark.parametrize("c", [2, 3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_finite_logits_do_not_overflow(c, dtype):
    # +-max in every position, whole rows of -max (their sums overflow: a finiteness test
    # written as z * 0 summed can turn into (z1 + z2) * 0 = NaN under fastmath)
    big = np.finfo(dtype).max
    rng = np.random.default_rng(c)
    logits = rng.choice(np.array([big, -big, 0.0, 1.0], dtype=dtype), size=(200, c))
    logits[0] = -big
    logits[1] = big
    logits[2, :] = 0.0
    logits[2, 0] = -big
    for method in METHODS:
        got = fastal.score(logits, method, from_logits=True)
        assert np.isfinite(got).all()
        with np.errstate(over="ignore"):  # the reference's float64 z - max may overflow
            want = ref.uncertainty(logits, method, True)
        np.testing.assert_allclose(got, want, atol=1e-6)


def _confident_reference(logits, method):
    """Scores of float logits in float64 without cancellation (rest = sum of e^t below the max)."""
    z = logits.astype(np.float64)
    t = z - z.max(axis=1, keepdims=True)
    e = np.exp(t)
    s = e.sum(axis=1)
    second = np.sort(t, axis=1)[:, -2]
    rest = np.where(t < 0, e, 0).sum(axis=1) + ((t == 0).sum(axis=1) - 1)
    if method == "least_confidence":
        return rest / s
    if method == "margin":
        return (rest + np.exp(second)) / s
    if method == "ratio":
        return np.exp(second)
    return np.log1p(rest) - (e * t).sum(axis=1) / s


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("c", [2, 10, 37, 100])
def test_confident_and_tied_logits_keep_relative_precision(method, c):
    # Near-certain rows (gaps of 5 to 80 nats) score 1e-35..1e-2: a formula such as 1 - p(1)
    # would round them to 0 and lose their order. Rows with tied maxima need the tie count.
    rng = np.random.default_rng(c)
    logits = rng.standard_normal((600, c)).astype(np.float32)
    logits[:500, 0] += np.linspace(5, 80, 500).astype(np.float32)
    logits[500:520] = 0.0                                    # constant rows
    logits[520:540, 1] = logits[520:540, 0] = 3.0            # two tied maxima
    logits[540:560, :3] = 7.5                                # three tied maxima
    got = fastal.score(logits, method, from_logits=True).astype(np.float64)
    want = _confident_reference(logits, method)
    # Documented bound: (2 + C) * 6e-8 from exp32/log32 and the float32 sums, plus
    # 6e-8 * |t| from rounding the shifted logit t = z - max to float32 (t2 up to -80 here).
    gap = np.abs(np.sort(logits, axis=1)[:, -2].astype(np.float64) - logits.max(axis=1))
    rtol = (2 + c) * 6e-8 + 6e-8 * gap
    big = want > 1e-30          # float32 scores below ~1e-38 underflow: only these can fail
    assert (np.abs(got - want)[big] <= rtol[big] * want[big]).all()
    if method != "entropy":
        order = np.argsort(-want[:500], kind="stable")
        assert (np.diff(got[:500][order][want[:500][order] > 1e-30]) <= 0).all()


@pytest.mark.parametrize("c", [2, 3, 4, 7, 10, 100])
def test_non_finite_logits_are_named_wherever_they_are(c):
    # NaN, +inf and -inf at the first, a middle and the last class, in float32 (the
    # transposed kernel, every lane layout) and float64: each one is found and named.
    rng = np.random.default_rng(c)
    for dtype in (np.float32, np.float64):
        for value in (np.nan, np.inf, -np.inf):
            for column in sorted({0, c // 2, c - 1}):
                for row in (0, 37, 299):
                    logits = rng.standard_normal((300, c)).astype(dtype)
                    logits[row, column] = value
                    for method in METHODS:
                        with pytest.raises(FastalError, match=rf"row {row} of data"):
                            fastal.score(logits, method, from_logits=True)


@pytest.mark.parametrize("method", METHODS)
def test_probs_and_logits_agree(method):
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((300, 6))
    np.testing.assert_allclose(
        fastal.score(logits, method, from_logits=True),
        fastal.score(ref.softmax(logits), method), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("from_logits", [False, True])
def test_independent_of_chunk_size_and_threads(method, from_logits, threads):
    rng = np.random.default_rng(11)
    n = 5000
    values = (rng.standard_normal((n, 10)).astype(np.float32) if from_logits
              else random_probs(rng, n, 10))
    base = fastal.score(values, method, from_logits=from_logits, chunk_rows=n)
    base_top = fastal.top_k(values, 50, method, from_logits=from_logits, chunk_rows=n)
    for chunk_rows in (1, 7, 4096):
        if chunk_rows == 1 and method != "margin":
            continue  # chunk_rows=1 is slow in Python; one method covers it
        got = fastal.score(values, method, from_logits=from_logits, chunk_rows=chunk_rows)
        np.testing.assert_array_equal(got, base)
        sel = fastal.top_k(values, 50, method, from_logits=from_logits, chunk_rows=chunk_rows)
        np.testing.assert_array_equal(sel.indices, base_top.indices)
        np.testing.assert_array_equal(sel.scores, base_top.scores)


def test_results_identical_across_thread_counts():
    import numba
    rng = np.random.default_rng(2)
    probs = random_probs(rng, 20000, 10)
    results = {}
    for t in (1, 2):
        numba.set_num_threads(min(t, numba.config.NUMBA_NUM_THREADS))
        results[t] = [fastal.score(probs, m) for m in METHODS]
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for a, b in zip(results[1], results[2]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method", METHODS)
def test_top_k_matches_reference(method, threads):
    rng = np.random.default_rng(8)
    probs = random_probs(rng, 3000, 4)
    for k in (1, 10, 3000):
        sel = fastal.top_k(probs, k, method, chunk_rows=256)
        want = ref.top_k(fastal.score(probs, method), k)
        np.testing.assert_array_equal(sel.indices, want)
        assert sel.indices.dtype == np.int64 and sel.scores.dtype == np.float32
        assert len(sel) == k and sel.n_pool == 3000 and sel.ids is None
        np.testing.assert_allclose(sel.scores, ref.uncertainty(probs, method)[want], atol=3e-6)


def test_top_k_ties_go_to_lower_rows():
    # Every row scores the same: the k lowest positions must come back, in order.
    probs = np.full((1000, 4), 0.25, dtype=np.float32)
    for chunk_rows in (1, 7, 100, 1000):
        sel = fastal.top_k(probs, 37, "entropy", chunk_rows=chunk_rows)
        np.testing.assert_array_equal(sel.indices, np.arange(37))
    # Two score levels interleaved; the later, higher rows win, ties by row.
    probs = np.tile(np.array([[1.0, 0.0], [0.5, 0.5]], dtype=np.float32), (500, 1))
    sel = fastal.top_k(probs, 10, "margin", chunk_rows=3)
    np.testing.assert_array_equal(sel.indices, np.arange(1, 20, 2))


@settings(max_examples=40, deadline=None)
@given(
    scores_seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 300),
    c=st.integers(2, 6),
    levels=st.integers(1, 5),
    chunk_rows=st.integers(1, 64),
    data=st.data(),
)
def test_top_k_property(scores_seed, n, c, levels, chunk_rows, data):
    # Few distinct rows -> many exact ties, the hard case for a streaming top-k.
    rng = np.random.default_rng(scores_seed)
    distinct = random_probs(rng, levels, c)
    probs = distinct[rng.integers(0, levels, size=n)]
    k = data.draw(st.integers(1, n))
    method = data.draw(st.sampled_from(METHODS))
    sel = fastal.top_k(probs, k, method, chunk_rows=chunk_rows)
    np.testing.assert_array_equal(sel.indices, ref.top_k(fastal.score(probs, method), k))


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=2, max_side=12),
                  elements=st.floats(-50, 50)))
def test_logits_property(logits):
    for method in METHODS:
        np.testing.assert_allclose(fastal.score(logits, method, from_logits=True),
                                   ref.uncertainty(logits, method, True), rtol=1e-5, atol=1e-6)


# --- bad input -------------------------------------------------------------------------

def test_unknown_method():
    with pytest.raises(FastalError, match="method must be one of entropy, least_confidence"):
        fastal.score(np.full((2, 2), 0.5), "bogus")


@pytest.mark.parametrize("data, message", [
    (np.full(10, 0.1), r"must be 2-D \(rows, classes\); got shape \(10,\)"),
    (np.full((2, 2, 2), 0.5), r"must be 2-D \(rows, classes\); got shape \(2, 2, 2\)"),
    (np.ones((5, 1)), "at least 2 classes per row"),
    (np.empty((0, 3)), "empty"),
    (np.array([["a", "b"]]), "must hold real numbers"),
    (np.ones((2, 2), dtype=bool), "must hold real numbers"),
    (np.ones((2, 2), dtype=complex), "must hold real numbers"),
    ([[0.5, 0.5], [0.5]], "ragged|could not be read|object"),
])
def test_bad_shapes_and_dtypes(data, message):
    with pytest.raises(FastalError, match=message):
        fastal.score(data, "entropy")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bad, message", [
    (np.nan, r"row 3 of data contains nan at column 1"),
    (np.inf, r"row 3 of data contains inf at column 1"),
    (-np.inf, r"row 3 of data contains -inf at column 1"),
])
def test_non_finite_values(method, bad, message):
    probs = np.full((6, 3), 1 / 3)
    probs[3, 1] = bad
    with pytest.raises(FastalError, match=message):
        fastal.score(probs, method, chunk_rows=2)
    with pytest.raises(FastalError, match=message):
        fastal.top_k(probs, 2, method)
    with pytest.raises(FastalError, match=message):
        fastal.score(np.log(np.full((6, 3), 1 / 3)) + np.where(np.arange(18).reshape(6, 3) == 10, bad, 0),
                     method, from_logits=True)


@pytest.mark.parametrize("method", METHODS)
def test_rows_that_are_not_probabilities(method):
    probs = np.full((4, 2), 0.5, dtype=np.float32)
    probs[2] = [0.7, 0.7]
    with pytest.raises(FastalError, match=r"row 2 of data sums to 1.4, not 1.*from_logits=True"):
        fastal.score(probs, method)
    probs[2] = [1.5, -0.5]
    with pytest.raises(FastalError, match=r"row 2 of data has a negative probability -0.5 at column 1"):
        fastal.score(probs, method)
    # within tolerance is accepted
    probs[2] = [0.5004, 0.5]
    assert np.isfinite(fastal.score(probs, method)).all()


@pytest.mark.parametrize("k, message", [
    (0, "k must be >= 1; got 0"),
    (-3, "k must be >= 1"),
    (11, r"k=11 is larger than the pool \(data has 10 rows\)"),
    (2.5, "k must be a positive integer"),
    (True, "k must be a positive integer"),
])
def test_bad_k(k, message):
    with pytest.raises(FastalError, match=message):
        fastal.top_k(np.full((10, 2), 0.5), k, "margin")


@pytest.mark.parametrize("chunk_rows", [0, -1, 1.5, "10"])
def test_bad_chunk_rows(chunk_rows):
    with pytest.raises(FastalError, match="chunk_rows"):
        fastal.score(np.full((10, 2), 0.5), "margin", chunk_rows=chunk_rows)


def test_column_arguments_need_arrow_data():
    with pytest.raises(FastalError, match="column/id_column apply to Arrow"):
        fastal.top_k(np.full((10, 2), 0.5), 2, "margin", id_column="id")


def test_integer_and_float16_inputs_are_converted():
    probs = np.array([[1, 0], [0, 1]], dtype=np.int64)
    np.testing.assert_array_equal(fastal.score(probs, "entropy"), [0, 0])
    half = np.array([[0.25, 0.75]], dtype=np.float16)
    assert fastal.score(half, "margin")[0] == pytest.approx(0.5)


def test_non_contiguous_arrays():
    rng = np.random.default_rng(0)
    probs = random_probs(rng, 100, 5, np.float64)
    fortran = np.asfortranarray(probs)
    strided = np.repeat(probs, 2, axis=0)[::2]
    want = fastal.score(probs, "entropy")
    np.testing.assert_array_equal(fastal.score(fortran, "entropy"), want)
    np.testing.assert_array_equal(fastal.score(strided, "entropy"), want)


@pytest.mark.parametrize("c", [4, 6, 7, 8, 10, 12, 16, 100])
def test_float32_lanes_any_alignment_and_layout(c):
    # float32 rows with C divisible by 4 (2) are moved as 16-byte (8-byte) units: the
    # answer must not depend on the buffer's alignment, order or strides.
    rng = np.random.default_rng(c)
    probs = random_probs(rng, 301, c, np.float32, concentration=0.5)
    probs[17] = np.float32(1.0 / c)
    raw = np.empty(probs.nbytes + 4, dtype=np.uint8)
    shifted = np.frombuffer(raw.data, dtype=np.float32, count=probs.size, offset=4)
    shifted = shifted.reshape(probs.shape)
    shifted[...] = probs
    assert shifted.ctypes.data % 8 == 4
    layouts = [shifted, np.asfortranarray(probs), np.repeat(probs, 2, axis=0)[::2]]
    for method in METHODS:
        want = fastal.score(probs, method)
        np.testing.assert_allclose(want, ref.uncertainty(probs, method), rtol=3e-6, atol=3e-6)
        for other in layouts:
            np.testing.assert_allclose(fastal.score(other, method), want, rtol=1e-6, atol=1e-7)
        for chunk_rows in (1, 7, 64):
            np.testing.assert_array_equal(fastal.score(shifted, method, chunk_rows=chunk_rows),
                                          want)
    bad = shifted.copy()
    bad[123, c - 1] = np.nan
    with pytest.raises(FastalError, match="row 123"):
        fastal.score(bad, "margin")


def test_array_likes():
    class Wrapper:
        def __init__(self, a):
            self.a = a

        def __array__(self, dtype=None, copy=None):
            return self.a

    probs = np.array([[0.75, 0.25], [0.5, 0.5]], dtype=np.float32)
    np.testing.assert_array_equal(fastal.score(Wrapper(probs), "margin"), [0.5, 1.0])
    np.testing.assert_array_equal(fastal.score(probs.tolist(), "margin"), [0.5, 1.0])


def test_dlpack_tensor():
    torch = pytest.importorskip("torch")
    probs = torch.tensor([[0.75, 0.25], [0.5, 0.5]])
    np.testing.assert_array_equal(fastal.score(probs, "margin"), [0.5, 1.0])


def test_subnormal_and_zero_probabilities():
    tiny = np.finfo(np.float32).tiny
    rows = np.array([[1 - 3e-39, 1e-39, 2e-39, 0.0],
                     [0.5, 0.5 - tiny, tiny, 0.0],
                     [0.25, 0.25, 0.25, 0.25]], dtype=np.float32)
    for method in METHODS:
        np.testing.assert_allclose(fastal.score(rows, method), ref.uncertainty(rows, method),
                                   atol=1e-6)


@pytest.mark.parametrize("c", [2, 15, 16, 17, 63, 64, 65, 513])
def test_block_edges(c):
    # Row counts around the kernels' block sizes: partial blocks and partial tasks.
    from fastal._kernels.uncertainty import block_rows
    rng = np.random.default_rng(c)
    b = block_rows(c)
    for n in (1, b - 1, b, b + 1, 32 * b + 3):
        probs = random_probs(rng, n, c)
        for method in METHODS:
            np.testing.assert_allclose(fastal.score(probs, method), ref.uncertainty(probs, method),
                                       rtol=3e-6, atol=3e-6)


@pytest.mark.parametrize("c", [2, 10, 25, 26, 100, 513])
def test_logits_block_edges(c):
    # The float32 logits kernel has its own block size: partial blocks and tasks around it,
    # and the same bits for a row whatever block it falls in.
    from fastal._kernels.uncertainty import block_rows_logits
    rng = np.random.default_rng(c)
    b = block_rows_logits(c)
    logits = (rng.standard_normal((32 * b + 3, c)) * 4).astype(np.float32)
    for method in METHODS:
        whole = fastal.score(logits, method, from_logits=True)
        for n in (1, b - 1, b, b + 1, 32 * b + 3):
            got = fastal.score(logits[:n], method, from_logits=True)
            np.testing.assert_array_equal(got, whole[:n])
            np.testing.assert_allclose(got, ref.uncertainty(logits[:n], method, True),
                                       rtol=3e-6, atol=3e-6)


@pytest.mark.parametrize("c", [9, 10, 25, 26, 32, 33, 100])
def test_logits_any_layout(c):
    # float32 logits in every layout the kernel loads differently (C order moved as units,
    # rows one, two or four at a time by units per row; column order; strided rows; a
    # misaligned buffer): the same scores as the reference, and the same bits wherever the
    # lanes are the same (C order and column order share them).
    rng = np.random.default_rng(c)
    logits = (rng.standard_normal((301, c)) * 4).astype(np.float32)
    logits[7, :2] = 5.0                                       # tied maxima
    raw = np.empty(logits.nbytes + 4, dtype=np.uint8)
    shifted = np.frombuffer(raw.data, dtype=np.float32, count=logits.size, offset=4)
    shifted = shifted.reshape(logits.shape)
    shifted[...] = logits
    strided = np.repeat(logits, 2, axis=0)[::2]
    for method in METHODS:
        want = fastal.score(logits, method, from_logits=True)
        np.testing.assert_allclose(want, ref.uncertainty(logits, method, True),
                                   rtol=3e-6, atol=3e-6)
        for same in (shifted, np.asfortranarray(logits)):
            np.testing.assert_array_equal(fastal.score(same, method, from_logits=True), want)
        for n in (301, 300, 3):
            np.testing.assert_allclose(fastal.score(strided[:n], method, from_logits=True),
                                       ref.uncertainty(logits[:n], method, True),
                                       rtol=3e-6, atol=3e-6)


def test_out_buffer():
    probs = np.array([[0.75, 0.25], [0.5, 0.5]], dtype=np.float32)
    buffer = np.full(2, -1.0, dtype=np.float32)
    assert fastal.score(probs, "margin", out=buffer) is buffer
    np.testing.assert_array_equal(buffer, [0.5, 1.0])
    for bad in (np.empty(3, np.float32), np.empty(2, np.float64), [0.0, 0.0],
                np.empty(4, np.float32)[::2]):
        with pytest.raises(FastalError, match="out must be a writeable contiguous float32 array"):
            fastal.score(probs, "margin", out=bad)
