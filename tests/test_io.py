"""Data sources: NumPy, Arrow tables, IPC files (file and stream format), Parquet, directories."""

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

import fastal
from fastal import FastalError
from fastal.io import as_source

from conftest import random_probs

N, C = 2000, 5


@pytest.fixture(scope="module")
def probs():
    return random_probs(np.random.default_rng(0), N, C)


def fixed_list(values):
    return pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), values.shape[1])


def var_list(values):
    offsets = pa.array(np.arange(0, values.size + 1, values.shape[1], dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(values.ravel()))


def table(values, layout="fixed", ids="int"):
    cols = {}
    if ids == "int":
        cols["id"] = pa.array(np.arange(values.shape[0], dtype=np.int64) * 10 + 7)
    elif ids == "str":
        cols["id"] = pa.array([f"row-{i}" for i in range(values.shape[0])])
    if layout == "fixed":
        cols["probs"] = fixed_list(values)
    elif layout == "list":
        cols["probs"] = var_list(values)
    else:
        for j in range(values.shape[1]):
            cols[f"p{j}"] = pa.array(values[:, j])
    cols["note"] = pa.array(["x"] * values.shape[0])
    return pa.table(cols)


def column_arg(layout):
    return [f"p{j}" for j in range(C)] if layout == "columns" else None


def write(tmp_path, tbl, kind, batch_rows=300):
    if kind == "ipc":
        path = tmp_path / "pool.arrow"
        with pa.ipc.new_file(path, tbl.schema) as w:
            for b in tbl.to_batches(max_chunksize=batch_rows):
                w.write_batch(b)
    elif kind == "stream":
        path = tmp_path / "pool.arrows"
        with pa.ipc.new_stream(path, tbl.schema) as w:
            for b in tbl.to_batches(max_chunksize=batch_rows):
                w.write_batch(b)
    elif kind == "feather":
        path = tmp_path / "pool.feather"
        feather.write_feather(tbl, path, compression="zstd", chunksize=batch_rows)
    elif kind == "parquet":
        path = tmp_path / "pool.parquet"
        pq.write_table(tbl, path, row_group_size=batch_rows)
    elif kind == "dir":
        path = tmp_path / "pool"
        path.mkdir()
        cut = [0, 123, 900, 901, tbl.num_rows]
        for i, (a, b) in enumerate(zip(cut[:-1], cut[1:])):
            part = tbl.slice(a, b - a)
            if i % 2:
                pq.write_table(part, path / f"part-{i}.parquet", row_group_size=97)
            else:
                feather.write_feather(part, path / f"part-{i}.arrow", compression="uncompressed")
        (path / "_SUCCESS").write_text("")
        (path / ".hidden.parquet").write_text("not parquet")
    return path


KINDS = ["table", "ipc", "stream", "feather", "parquet", "dir"]


def make(tmp_path, values, kind, layout="fixed", ids="int"):
    tbl = table(values, layout, ids)
    return tbl if kind == "table" else write(tmp_path, tbl, kind)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layout", ["fixed", "list", "columns"])
def test_every_source_gives_the_numpy_answer(tmp_path, probs, kind, layout):
    data = make(tmp_path, probs, kind, layout)
    col = column_arg(layout)
    for method in fastal.UNCERTAINTY_METHODS:
        want = fastal.score(probs, method)
        np.testing.assert_array_equal(fastal.score(data, method, column=col), want)
        for chunk_rows in (7, 4096):
            sel = fastal.top_k(data, 25, method, column=col, id_column="id", chunk_rows=chunk_rows)
            ref = fastal.top_k(probs, 25, method)
            np.testing.assert_array_equal(sel.indices, ref.indices)
            np.testing.assert_array_equal(sel.scores, ref.scores)
            np.testing.assert_array_equal(sel.ids, ref.indices * 10 + 7)


@pytest.mark.parametrize("kind", ["table", "ipc", "parquet", "dir"])
def test_string_ids(tmp_path, probs, kind):
    data = make(tmp_path, probs, kind, ids="str")
    sel = fastal.top_k(data, 10, "entropy", id_column="id", chunk_rows=64)
    assert list(sel.ids) == [f"row-{i}" for i in sel.indices]


def test_float64_and_logits_in_files(tmp_path, probs):
    logits = np.log(probs.astype(np.float64) + 1e-3)
    path = write(tmp_path, table(logits), "parquet")
    for method in fastal.UNCERTAINTY_METHODS:
        np.testing.assert_array_equal(fastal.score(path, method, from_logits=True),
                                      fastal.score(logits, method, from_logits=True))


def test_chunks_are_exact_and_cover_the_pool(tmp_path, probs):
    path = write(tmp_path, table(probs), "ipc", batch_rows=33)
    source = as_source(path, id_column="id")
    assert (source.n_rows, source.width, source.dtype) == (N, C, np.float32)
    for chunk_rows in (1, 50, 1000, N, 10 * N):
        chunks = list(source.chunks(chunk_rows))
        sizes = [c.values.shape[0] for c in chunks]
        assert max(sizes) <= chunk_rows
        # no crumbs: every chunk but the last holds at least half a chunk (or a whole batch)
        assert all(s >= min(chunk_rows // 2, 33) for s in sizes[:-1])
        assert [c.start for c in chunks] == list(np.cumsum([0] + sizes[:-1]))
        np.testing.assert_array_equal(np.concatenate([c.values for c in chunks]), probs)
        np.testing.assert_array_equal(np.concatenate([c.ids for c in chunks]), np.arange(N) * 10 + 7)


def test_ipc_file_is_read_zero_copy(tmp_path, probs):
    path = write(tmp_path, table(probs), "ipc", batch_rows=N)
    source = as_source(path)
    chunk = next(iter(source.chunks(N)))
    base = source._buffer.address
    addr = chunk.values.__array_interface__["data"][0]
    assert base <= addr < base + source._buffer.size  # a view of the mapping, not a copy


def test_column_is_found_without_naming_it(probs):
    tbl = table(probs)  # one list column: used by default
    np.testing.assert_array_equal(fastal.score(tbl, "margin"), fastal.score(probs, "margin"))


# --- bad input -------------------------------------------------------------------------

def test_missing_path(tmp_path):
    with pytest.raises(FastalError, match="path does not exist"):
        fastal.score(tmp_path / "nope.parquet", "entropy")


def test_corrupt_files(tmp_path, probs):
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"hello world, not a file format")
    with pytest.raises(FastalError, match="neither a Parquet file nor an Arrow IPC file"):
        fastal.score(junk, "entropy")
    good = write(tmp_path, table(probs), "parquet")
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(FastalError, match="cannot read .*truncated.parquet"):
        fastal.score(truncated, "entropy")
    ipc = write(tmp_path, table(probs), "ipc")
    cut = tmp_path / "cut.arrow"
    cut.write_bytes(ipc.read_bytes()[: ipc.stat().st_size // 2])
    with pytest.raises(FastalError, match="cannot read .*cut.arrow"):
        fastal.score(cut, "entropy")
    empty = tmp_path / "empty.arrow"
    empty.write_bytes(b"")
    with pytest.raises(FastalError, match="empty.arrow"):
        fastal.score(empty, "entropy")


def test_empty_directory(tmp_path):
    with pytest.raises(FastalError, match="holds no Parquet or Arrow IPC files"):
        fastal.score(tmp_path, "entropy")


def test_directory_files_must_agree(tmp_path, probs):
    pq.write_table(table(probs[:10]), tmp_path / "a.parquet")
    pq.write_table(table(random_probs(np.random.default_rng(1), 10, 3)), tmp_path / "b.parquet")
    with pytest.raises(FastalError, match="disagree"):
        fastal.score(tmp_path, "entropy")


def test_missing_and_mistyped_columns(probs):
    tbl = table(probs)
    with pytest.raises(FastalError, match=r"column 'nope' not found in table; columns are: id: int64, probs"):
        fastal.score(tbl, "entropy", column="nope")
    with pytest.raises(FastalError, match=r"column 'note' must be a list<float>"):
        fastal.score(tbl, "entropy", column="note")
    with pytest.raises(FastalError, match=r"column 'id' must be a list<float>.*column=\[\.\.\.\]"):
        fastal.score(tbl, "entropy", column="id")
    with pytest.raises(FastalError, match=r"column 'note' must be a numeric column"):
        fastal.score(tbl, "entropy", column=["id", "note"])
    with pytest.raises(FastalError, match=r"id_column 'nope' not found"):
        fastal.top_k(tbl, 3, "entropy", id_column="nope")
    with pytest.raises(FastalError, match=r"id_column 'probs' must be an integer or string column"):
        fastal.top_k(tbl, 3, "entropy", id_column="probs")
    no_list = table(probs, layout="columns")
    with pytest.raises(FastalError, match=r"has no list column; name the score column"):
        fastal.score(no_list, "entropy")
    two = tbl.append_column("other", fixed_list(probs))
    with pytest.raises(FastalError, match=r"several list columns \['probs', 'other'\]"):
        fastal.score(two, "entropy")
    strings = pa.table({"probs": pa.array([["a", "b"]])})
    with pytest.raises(FastalError, match="must hold floats"):
        fastal.score(strings, "entropy")


def test_ragged_and_null_rows():
    ragged = pa.table({"probs": pa.array([[0.5, 0.5], [0.2, 0.3, 0.5], [1.0, 0.0]])})
    with pytest.raises(FastalError, match=r"same length; row 1 has 3 values, expected 2"):
        fastal.score(ragged, "entropy")
    null_row = pa.table({"probs": pa.array([[0.5, 0.5], None, [1.0, 0.0]])})
    with pytest.raises(FastalError, match=r"is null at row 1"):
        fastal.score(null_row, "entropy")
    null_value = pa.table({"probs": pa.array([[0.5, 0.5], [None, 1.0]])})
    with pytest.raises(FastalError, match=r"null value at row 1"):
        fastal.score(null_value, "entropy")
    null_column = pa.table({"a": pa.array([0.5, None]), "b": pa.array([0.5, 0.5])})
    with pytest.raises(FastalError, match=r"column 'a' of table is null at row 1"):
        fastal.score(null_column, "entropy", column=["a", "b"])
    null_id = pa.table({"probs": pa.array([[0.5, 0.5], [0.5, 0.5]]), "id": pa.array([1, None])})
    with pytest.raises(FastalError, match=r"id_column 'id' of table is null at row 1"):
        fastal.top_k(null_id, 1, "entropy", id_column="id")


def test_bad_values_in_files_name_the_global_row(tmp_path, probs):
    bad = probs.copy()
    bad[1234, 2] = np.nan
    path = write(tmp_path, table(bad), "dir")
    with pytest.raises(FastalError, match=r"row 1234 of .* contains nan at column 2"):
        fastal.top_k(path, 5, "margin", chunk_rows=100)


def test_empty_table():
    empty = pa.table({"probs": pa.array([], type=pa.list_(pa.float32(), 3))})
    with pytest.raises(FastalError, match="empty"):
        fastal.score(empty, "entropy")
