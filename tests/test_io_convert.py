"""fastal.io.convert: a Parquet pool rewritten as one Arrow IPC file, all or nothing."""

import os

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

import fastal
from fastal import ArgumentError, DataError, FileError
from fastal.io import Converted, convert

from conftest import random_probs

N, C = 1500, 4


@pytest.fixture(scope="module")
def pool_table():
    rng = np.random.default_rng(5)
    probs = random_probs(rng, N, C)
    notes = [None if i % 7 == 0 else f"note-{i}" for i in range(N)]
    return pa.table({
        "id": pa.array([f"row-{i}" for i in range(N)]),
        "probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.ravel()), C),
        "emb": pa.array([[float(i), -float(i)] for i in range(N)], type=pa.list_(pa.float64())),
        "note": pa.array(notes),
        "weight": pa.array(rng.random(N)),
    })


def read_ipc(path):
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


@pytest.mark.parametrize("compression", ["none", "snappy", "zstd"])
def test_round_trip_keeps_values_ids_schema_and_order(tmp_path, pool_table, compression):
    src = tmp_path / "pool.parquet"
    pq.write_table(pool_table, src, row_group_size=97, compression=compression)
    done = convert(src, tmp_path / "pool.arrow", batch_rows=250)
    assert isinstance(done, Converted)
    assert (done.n_rows, done.n_files, done.n_batches) == (N, 1, 6)  # 250-row batches
    got = read_ipc(done.path)
    assert got.schema.equals(pq.read_schema(src), check_metadata=True)
    assert got.equals(pq.read_table(src))
    with pa.memory_map(str(done.path)) as source:
        assert pa.ipc.open_file(source).num_record_batches == 6
    for method in ("margin", "entropy"):
        want = fastal.top_k(src, 30, method, column="probs", id_column="id", chunk_rows=100)
        sel = fastal.top_k(done.path, 30, method, column="probs", id_column="id")
        np.testing.assert_array_equal(sel.indices, want.indices)
        np.testing.assert_array_equal(sel.scores, want.scores)
        assert list(sel.ids) == list(want.ids)


def test_default_batches_are_large(tmp_path, pool_table):
    src = tmp_path / "pool.parquet"
    pq.write_table(pool_table, src, row_group_size=100)
    done = convert(src, tmp_path / "pool.arrow")
    assert done.n_batches == 1  # a 1,500-row pool is far below CONVERT_BATCH_BYTES


def test_directory_in_scan_order(tmp_path, pool_table):
    folder = tmp_path / "pool"
    folder.mkdir()
    cuts = [0, 400, 401, 1100, N]
    for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:])):
        part = pool_table.slice(a, b - a)
        if i % 2:
            feather.write_feather(part, folder / f"part-{i}.arrow", compression="uncompressed")
        else:
            pq.write_table(part, folder / f"part-{i}.parquet", row_group_size=64)
    (folder / "_SUCCESS").write_text("")
    out = tmp_path / "pool.arrow"
    done = convert(folder, out, columns=["probs", "id"], batch_rows=128)
    assert done.n_files == 4 and done.n_rows == N
    got = read_ipc(out)
    assert got.column_names == ["probs", "id"]
    assert got.equals(pool_table.select(["probs", "id"]))
    want = fastal.top_k(folder, 20, "margin", column="probs", id_column="id")
    sel = fastal.top_k(out, 20, "margin", id_column="id")
    np.testing.assert_array_equal(sel.indices, want.indices)
    assert list(sel.ids) == list(want.ids)


def test_refuses_to_overwrite_without_force(tmp_path, pool_table):
    src = tmp_path / "pool.parquet"
    pq.write_table(pool_table, src)
    out = tmp_path / "pool.arrow"
    out.write_bytes(b"keep me")
    with pytest.raises(FileError, match="pool.arrow exists; pass force=True"):
        convert(src, out)
    assert out.read_bytes() == b"keep me"
    convert(src, out, force=True)
    assert read_ipc(out).equals(pq.read_table(src))


def test_a_failure_leaves_no_partial_file(tmp_path, pool_table):
    folder = tmp_path / "pool"
    folder.mkdir()
    pq.write_table(pool_table.slice(0, 700), folder / "a.parquet", row_group_size=100)
    good = tmp_path / "b.parquet"
    pq.write_table(pool_table.slice(700), good, row_group_size=100)
    meta = pq.ParquetFile(good).metadata
    data = bytearray(good.read_bytes())
    offset = meta.row_group(3).column(1).data_page_offset
    data[offset:offset + 64] = b"\xff" * 64  # the second file breaks mid-way
    (folder / "b.parquet").write_bytes(bytes(data))
    out = tmp_path / "pool.arrow"
    with pytest.raises(FileError, match="cannot read .*b.parquet"):
        convert(folder, out, batch_rows=50)
    assert not out.exists()
    out.write_bytes(b"old")
    with pytest.raises(FileError):
        convert(folder, out, force=True, batch_rows=50)
    assert out.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["b.parquet", "pool", "pool.arrow"]  # no temp file


def test_errors(tmp_path, pool_table):
    src = tmp_path / "pool.parquet"
    pq.write_table(pool_table, src)
    with pytest.raises(FileError, match="pool path does not exist"):
        convert(tmp_path / "nope.parquet", tmp_path / "x.arrow")
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not a parquet file at all")
    with pytest.raises(FileError, match="neither a Parquet file nor an Arrow IPC file"):
        convert(junk, tmp_path / "x.arrow")
    truncated = tmp_path / "cut.parquet"
    truncated.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(FileError, match="cannot read .*cut.parquet as a Parquet file"):
        convert(truncated, tmp_path / "x.arrow")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileError, match="holds no Parquet or Arrow IPC files"):
        convert(empty, tmp_path / "x.arrow")
    with pytest.raises(DataError, match="column 'nope' not found .* columns are: id: string"):
        convert(src, tmp_path / "x.arrow", columns=["probs", "nope"])
    with pytest.raises(ArgumentError, match="columns must be a non-empty list"):
        convert(src, tmp_path / "x.arrow", columns="probs")
    with pytest.raises(ArgumentError, match=r"must be an Arrow IPC file ending in \.arrow"):
        convert(src, tmp_path / "x.parquet")
    with pytest.raises(FileError, match="folder of out does not exist"):
        convert(src, tmp_path / "missing" / "x.arrow")
    with pytest.raises(ArgumentError, match="batch_rows must be a positive integer"):
        convert(src, tmp_path / "x.arrow", batch_rows=0)
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(pool_table.slice(0, 10), folder / "a.parquet")
    with pytest.raises(FileError, match="inside the pool"):
        convert(folder, folder / "all.arrow")
    pq.write_table(pool_table.slice(10, 10).drop_columns(["note"]), folder / "b.parquet")
    with pytest.raises(DataError, match="same columns and types.*b.parquet has"):
        convert(folder, tmp_path / "x.arrow")
    assert not (tmp_path / "x.arrow").exists()
