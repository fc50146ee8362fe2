"""One column per class: chunks are column-major; every consumer gives the in-memory answer.

The Arrow sources copy the C class columns of a batch into a (C, rows) array and hand out its
transpose, so the uncertainty kernels read whole columns (``lane_view`` / ``_load_block``)
and the scores must be bit-identical to scoring the row-major array, for any chunk size.
"""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastal
from fastal._kernels import uncertainty as U
from fastal.io import as_source
from fastal.io.arrow import ParquetSource

from conftest import random_probs


def _probs_and_logits(rng, n, c, dtype):
    z = rng.standard_normal((n, c)) * rng.uniform(0.5, 6.0, (n, 1))
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return p.astype(dtype), z.astype(dtype)


@pytest.mark.parametrize("c", [2, 3, 4, 6, 8, 10, 12])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_on_column_major_values_are_bit_identical(c, dtype):
    rng = np.random.default_rng(c)
    probs, logits = _probs_and_logits(rng, 1000, c, dtype)
    probs[5] = np.nan  # an invalid row is flagged the same way
    for from_logits, values in ((False, probs), (True, logits)):
        columns = np.ascontiguousarray(values.T)
        for view in (columns.T, columns.T[37:901], columns[:, 37:901].T):
            rows = np.ascontiguousarray(view)
            assert view.strides[0] == values.itemsize
            # the same lanes as the row-major array (the column path, not a fallback)
            assert U.lane_view(view)[1] == U.lane_view(rows)[1]
            for code in range(4):
                want = np.empty(rows.shape[0], np.float32)
                got = np.empty(rows.shape[0], np.float32)
                n_want = U.uncertainty_scores(rows, code, from_logits, 1e-3, want)
                n_got = U.uncertainty_scores(view, code, from_logits, 1e-3, got)
                assert n_got == n_want
                np.testing.assert_array_equal(got, want)


def _columns_table(values, ids=True):
    cols = {f"p{j}": pa.array(values[:, j]) for j in range(values.shape[1])}
    if ids:
        cols["id"] = pa.array(np.arange(values.shape[0], dtype=np.int64) * 3 + 1)
    return pa.table(cols)


@pytest.mark.parametrize("c", [4, 10])
def test_per_class_columns_give_the_in_memory_scores(tmp_path, c):
    rng = np.random.default_rng(1)
    probs = random_probs(rng, 3000, c)
    logits = np.log(probs + np.float32(1e-3))
    names = [f"p{j}" for j in range(c)]
    for from_logits, values in ((False, probs), (True, logits)):
        path = tmp_path / f"pool-{from_logits}.parquet"
        pq.write_table(_columns_table(values), path, row_group_size=700)
        for data in (path, _columns_table(values)):
            for method in fastal.UNCERTAINTY_METHODS:
                want = fastal.score(values, method, from_logits=from_logits)
                top = fastal.top_k(values, 50, method, from_logits=from_logits)
                for chunk_rows in (13, 256, 700, 1000, None):
                    got = fastal.score(data, method, from_logits=from_logits, column=names,
                                       chunk_rows=chunk_rows)
                    np.testing.assert_array_equal(got, want)
                    sel = fastal.top_k(data, 50, method, from_logits=from_logits,
                                       column=names, id_column="id", chunk_rows=chunk_rows)
                    np.testing.assert_array_equal(sel.indices, top.indices)
                    np.testing.assert_array_equal(sel.scores, top.scores)
                    np.testing.assert_array_equal(sel.ids, top.indices * 3 + 1)
        for readahead in (0, 1, 2):
            source = ParquetSource(path, names, "id", readahead=readahead)
            got = fastal.score(source, "entropy", from_logits=from_logits, chunk_rows=300)
            np.testing.assert_array_equal(got, fastal.score(values, "entropy",
                                                            from_logits=from_logits))


def test_column_major_chunks_and_read_all(tmp_path):
    rng = np.random.default_rng(2)
    values = rng.random((2000, 6), dtype=np.float32)
    path = tmp_path / "pool.parquet"
    pq.write_table(_columns_table(values), path, row_group_size=333)
    source = as_source(path, column=[f"p{j}" for j in range(6)])
    for chunk_rows in (1, 50, 333, 5000):
        chunks = list(source.chunks(chunk_rows))
        np.testing.assert_array_equal(np.concatenate([ch.values for ch in chunks]), values)
        assert all(ch.values.shape[0] <= chunk_rows for ch in chunks)
    read = source.read_all()
    assert read.flags.c_contiguous
    np.testing.assert_array_equal(read, values)


@pytest.mark.parametrize("row_group", [1000, 1050, 4000])
@pytest.mark.parametrize("readahead", [0, 1, 2])
def test_long_batches_are_cut_into_equal_chunks(tmp_path, monkeypatch, row_group, readahead):
    # Units of several chunks are decoded as long batches (one per unit here) and cut into
    # equal pieces: each piece is a chunk of its own (no short tail that would make
    # Source.chunks concatenate), numbered from the right row, ids aligned.
    import fastal.io.arrow as arrow
    monkeypatch.setattr(arrow, "PARQUET_TASK_BYTES", 1)  # one row group per unit
    rng = np.random.default_rng(5)
    values = rng.random((9000, 5), dtype=np.float32)
    path = tmp_path / "pool.parquet"
    pq.write_table(_columns_table(values), path, row_group_size=row_group)
    source = ParquetSource(path, [f"p{j}" for j in range(5)], "id", readahead=readahead)
    batches = []
    convert = source._convert
    monkeypatch.setattr(source, "_convert",
                        lambda batch, *a: batches.append(batch.num_rows) or convert(batch, *a))
    chunks = list(source.chunks(100))
    if readahead:  # the decoding threads read batches of several chunks
        most = arrow._COLUMN_BATCH_CHUNKS * 100
        assert max(batches) == -(-row_group // -(-row_group // most))
    assert [ch.start for ch in chunks] == list(np.cumsum([0] + [len(ch.values) for ch in chunks])[:-1])
    np.testing.assert_array_equal(np.concatenate([ch.values for ch in chunks]), values)
    np.testing.assert_array_equal(np.concatenate([ch.ids for ch in chunks]), np.arange(9000) * 3 + 1)
    sizes = [len(ch.values) for ch in chunks]
    assert max(sizes) <= 100 and min(sizes) >= 50, sizes
    # every chunk is a view of its own copy: no concatenation happened
    assert all(ch.values.base is not None and ch.values.base.shape[1] == len(ch.values)
               for ch in chunks)


@pytest.mark.parametrize("readahead", [0, 1])
def test_a_null_in_a_long_batch_is_named_by_its_pool_row(tmp_path, readahead):
    values = np.random.default_rng(6).random((9000, 3)).astype(np.float32)
    table = _columns_table(values)
    p1 = pa.array(np.where(np.arange(9000) == 6789, np.nan, values[:, 1]),
                  mask=np.arange(9000) == 6789)
    table = table.set_column(1, "p1", p1)
    path = tmp_path / "pool.parquet"
    pq.write_table(table, path, row_group_size=4000)
    source = ParquetSource(path, ["p0", "p1", "p2"], "id", readahead=readahead)
    with pytest.raises(fastal.DataError, match=r"column 'p1' of .* is null at row 6789"):
        fastal.score(source, "entropy", from_logits=True, chunk_rows=100)


def test_other_consumers_of_per_class_columns(tmp_path):
    """Models, EGL and regression committees read column-major chunks like arrays."""
    rng = np.random.default_rng(3)
    n, d, c = 1500, 6, 4
    X = rng.standard_normal((n, d)).astype(np.float32)
    path = tmp_path / "emb.parquet"
    pq.write_table(_columns_table(X, ids=False), path, row_group_size=400)
    names = [f"p{j}" for j in range(d)]
    head = fastal.models.LinearHead(rng.standard_normal((d, c)).astype(np.float32),
                                    rng.standard_normal(c).astype(np.float32))
    for method in ("margin", "entropy"):
        np.testing.assert_array_equal(
            fastal.score(path, method, model=head, column=names, chunk_rows=97),
            fastal.score(X, method, model=head))
    probs = random_probs(rng, n, c)
    ppath = tmp_path / "probs.parquet"
    pq.write_table(_columns_table(probs, ids=False), ppath, row_group_size=400)
    pnames = [f"p{j}" for j in range(c)]
    np.testing.assert_array_equal(
        fastal.score(ppath, "expected_gradient_length_bias", column=pnames, chunk_rows=97),
        fastal.score(probs, "expected_gradient_length_bias"))
    want = np.empty(n, np.float32)
    fastal.committee.regression_chunk(np.ascontiguousarray(X.T), want)
    got = fastal.score(path, "committee_std", column=names, chunk_rows=97)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got, np.std(X.astype(np.float64), axis=1), rtol=1e-5)
