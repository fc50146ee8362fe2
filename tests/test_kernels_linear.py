"""fastal._kernels.linear: logits in one fixed order, bit-identical to NumPy doing the same sum.

The kernel's promise is that a row's logits depend only on the row, W and b. It is tested
bit for bit against ``reference.linear_logits_in_order`` (the same left-to-right sum with
NumPy's elementwise operations), within float tolerance against a float64 product, and for
invariance to how the rows are chunked or strided and to the thread count.
"""

import numpy as np
import pytest

from fastal._kernels.linear import linear_logits

import reference as ref


def _run(X, W, b):
    out = np.empty((X.shape[0], W.shape[1]), dtype=X.dtype)
    linear_logits(X, W.astype(X.dtype), b.astype(X.dtype), out)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, d, c", [(1, 1, 2), (31, 3, 3), (33, 7, 5), (100, 16, 4),
                                     (257, 50, 10), (64, 9, 7), (70, 130, 101)])
def test_bit_identical_to_the_ordered_sum(threads, dtype, n, d, c):
    rng = np.random.default_rng(n * 1000 + d * 10 + c)
    X = (rng.standard_normal((n, d)) * rng.choice([1e-3, 1.0, 1e3], size=(n, 1))).astype(dtype)
    W = rng.standard_normal((d, c)).astype(dtype)
    b = rng.standard_normal(c).astype(dtype)
    got = _run(X, W, b)
    np.testing.assert_array_equal(got, ref.linear_logits_in_order(X, W, b))
    exact = X.astype(np.float64) @ W.astype(np.float64) + b
    scale = np.abs(X).astype(np.float64) @ np.abs(W).astype(np.float64) + np.abs(b)
    eps = np.finfo(dtype).eps
    assert np.all(np.abs(got - exact) <= (d + 1) * eps * scale + 1e-300)


def test_rows_do_not_depend_on_their_chunk_or_strides(threads):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((1000, 37)).astype(np.float32)
    W = rng.standard_normal((37, 6)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    whole = _run(X, W, b)
    for rows in (1, 7, 32, 33, 100, 999):
        parts = [_run(X[lo:lo + rows], W, b) for lo in range(0, 1000, rows)]
        np.testing.assert_array_equal(np.concatenate(parts), whole)
    wide = np.empty((1000, 74), dtype=np.float32)
    wide[:, ::2] = X
    np.testing.assert_array_equal(_run(wide[:, ::2], W, b), whole)   # strided rows
    np.testing.assert_array_equal(_run(np.asfortranarray(X), W, b), whole)


def test_non_finite_inputs_propagate():
    X = np.ones((40, 3), dtype=np.float32)
    X[5, 1] = np.nan
    X[39, 2] = np.inf
    got = _run(X, np.ones((3, 2)), np.zeros(2))
    assert np.isnan(got[5]).all() and np.isinf(got[39]).all()
    assert np.isfinite(np.delete(got, [5, 39], axis=0)).all()


@pytest.mark.parametrize("c", [1, 2, 3, 4, 5, 8, 10])
def test_weights_padded_to_four_classes_once_give_the_same_bits(c):
    # LinearHead pads W and b to a multiple of 4 classes once (the kernel accumulates four
    # at a time); linear_logits pads unpadded ones itself. The padding classes are never
    # written: same bits either way, out keeps its C columns.
    from fastal._kernels.linear import padded_weights
    rng = np.random.default_rng(c)
    X = rng.standard_normal((70, 9)).astype(np.float32)
    W = rng.standard_normal((9, c)).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    Wp, bp = padded_weights(W, b)
    assert Wp.shape == (9, -(-c // 4) * 4) and bp.shape == (Wp.shape[1],)
    assert Wp.flags.c_contiguous and not Wp[:, c:].any() and not bp[c:].any()
    assert (Wp is W) == (c % 4 == 0)
    out = np.full((70, c), 7.0, dtype=np.float32)
    linear_logits(X, Wp, bp, out)
    np.testing.assert_array_equal(out, ref.linear_logits_in_order(X, W, b))
    np.testing.assert_array_equal(out, _run(X, W, b))
    strided = np.asfortranarray(W)  # not C-contiguous: padded by linear_logits
    np.testing.assert_array_equal(_run(X, strided, b), out)
    wide = Wp.shape[1] + 1  # (internal) W with fewer classes than out: refused
    with pytest.raises(ValueError, match=f"for {wide} classes"):
        linear_logits(X, Wp, bp, np.empty((70, wide), dtype=np.float32))


@pytest.mark.parametrize("c", [2, 3, 4, 5, 10, 12, 37, 100, 150])
def test_head_scores_equal_scoring_the_stored_logits(threads, c):
    """``uncertainty.linear_scores`` (the logits kernel making each block's logits in place,
    ``_block_logits``) gives bit for bit the scores of ``linear_logits``' stored logits, and
    the same count of invalid rows: every method, lane count (C divisible by 4, by 2, odd),
    block size (C = 150: blocks of 16 rows, under the head's 32), rows past a block, a NaN
    embedding, an overflowing row, confident and tied rows."""
    from fastal._kernels.linear import padded_weights
    from fastal._kernels.uncertainty import linear_scores, uncertainty_scores

    rng = np.random.default_rng(c)
    for n, d in [(1, 1), (45, 7), (700, 64)]:
        X = (rng.standard_normal((n, d)) * 3).astype(np.float32)
        W = rng.standard_normal((d, c)).astype(np.float32)
        b = rng.standard_normal(c).astype(np.float32)
        if n > 40:
            X[2, 0] = np.nan
            X[3] = 3e38  # logits overflow (inf, or NaN from inf - inf)
            X[4] = 0.0  # every logit b: a tie only if b has one
            X[5] *= 1e4  # confident
        Wp, bp = padded_weights(W, b)
        logits = np.empty((n, c), np.float32)
        linear_logits(X, Wp, bp, logits)
        for method in range(4):
            want = np.full(n, -1.0, np.float32)
            got = np.full(n, -2.0, np.float32)
            n_want = uncertainty_scores(logits, method, True, 1e-3, want)
            assert linear_scores(X, Wp, bp, c, method, got) == n_want
            np.testing.assert_array_equal(got, want)
            assert n_want >= (1 if n > 40 else 0)
