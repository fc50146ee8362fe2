"""Parquet scans: row groups decoded on threads give the in-memory answer, in bounded memory."""

import queue
import subprocess
import sys
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastal
from fastal import FastalError, FileError
import fastal.io.arrow as arrow
from fastal.io.arrow import ParquetSource

from conftest import random_probs

N, C = 3000, 5


@pytest.fixture(scope="module")
def probs():
    return random_probs(np.random.default_rng(3), N, C)


def pool_table(values, layout="fixed"):
    cols = {"id": pa.array(np.arange(values.shape[0], dtype=np.int64) * 3 + 1)}
    if layout == "fixed":
        cols["probs"] = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), values.shape[1])
    elif layout == "list":
        offsets = pa.array(np.arange(0, values.size + 1, values.shape[1], dtype=np.int32))
        cols["probs"] = pa.ListArray.from_arrays(offsets, pa.array(values.ravel()))
    else:
        for j in range(values.shape[1]):
            cols[f"p{j}"] = pa.array(values[:, j])
    return pa.table(cols)


def write(path, values, row_group_rows, layout="fixed", compression="snappy"):
    pq.write_table(pool_table(values, layout), path, row_group_size=row_group_rows,
                   compression=compression)
    return path


@pytest.fixture(autouse=True)
def one_row_group_per_unit(monkeypatch):
    """These pools are tiny: decode each row group as its own unit, as large files do."""
    monkeypatch.setattr(arrow, "PARQUET_TASK_BYTES", 1)


def fastal_threads():
    return [t for t in threading.enumerate() if t.name.startswith("fastal-parquet")]


@pytest.mark.parametrize("row_group_rows", [29, 64, 301, 5000])
@pytest.mark.parametrize("readahead", [None, 0, 3])  # None: cores - 1
def test_top_k_is_the_in_memory_answer(tmp_path, probs, row_group_rows, readahead):
    path = write(tmp_path / "pool.parquet", probs, row_group_rows)
    for method in ("margin", "entropy"):
        want = fastal.top_k(probs, 40, method)
        want_scores = fastal.score(probs, method)
        for chunk_rows in (13, 256, None):
            source = ParquetSource(path, id_column="id", readahead=readahead)
            got = fastal.top_k(source, 40, method, chunk_rows=chunk_rows)
            np.testing.assert_array_equal(got.indices, want.indices)
            np.testing.assert_array_equal(got.scores, want.scores)
            np.testing.assert_array_equal(got.ids, want.indices * 3 + 1)
            scores = fastal.score(ParquetSource(path, readahead=readahead), method,
                                  chunk_rows=chunk_rows)
            np.testing.assert_array_equal(scores, want_scores)
    assert not fastal_threads()


@pytest.mark.parametrize("row_group_rows", [97, 3000])
@pytest.mark.parametrize("layout", ["list", "columns"])
def test_other_layouts(tmp_path, probs, layout, row_group_rows):
    """Also the streamed reader (readahead 0), whose batches of per-class columns hold
    several chunks (cut into chunks before scoring)."""
    path = write(tmp_path / "pool.parquet", probs, row_group_rows, layout, compression="zstd")
    column = [f"p{j}" for j in range(C)] if layout == "columns" else None
    want = fastal.top_k(probs, 25, "margin")
    want_scores = fastal.score(probs, "margin")
    for readahead in (None, 0, 2):
        for chunk_rows in (50, 333):
            source = ParquetSource(path, column, "id", readahead=readahead)
            got = fastal.top_k(source, 25, "margin", chunk_rows=chunk_rows)
            np.testing.assert_array_equal(got.indices, want.indices)
            np.testing.assert_array_equal(got.scores, want.scores)
            np.testing.assert_array_equal(got.ids, want.indices * 3 + 1)
            chunks = list(ParquetSource(path, column, "id", readahead=readahead).chunks(chunk_rows))
            assert max(c.values.shape[0] for c in chunks) <= chunk_rows
            np.testing.assert_array_equal(np.concatenate([c.values for c in chunks]), probs)
            scores = fastal.score(ParquetSource(path, column, readahead=readahead), "margin",
                                  chunk_rows=chunk_rows)
            np.testing.assert_array_equal(scores, want_scores)


def test_row_groups_subset_in_given_order(tmp_path, probs):
    path = write(tmp_path / "pool.parquet", probs, 1000)
    source = ParquetSource(path, id_column="id", row_groups=[2, 0], readahead=1)
    assert source.n_rows == 2000
    chunks = list(source.chunks(300))
    values = np.concatenate([c.values for c in chunks])
    np.testing.assert_array_equal(values, np.concatenate([probs[2000:], probs[:1000]]))
    starts = [c.start for c in chunks]
    assert starts[0] == 0 and all(c.start == c0.stop for c0, c in zip(chunks, chunks[1:]))
    assert max(c.values.shape[0] for c in chunks) <= 300


def test_readahead_follows_the_byte_budget(tmp_path, probs, monkeypatch):
    path = write(tmp_path / "pool.parquet", probs, 300, compression="none")
    source = ParquetSource(path)
    row_group = max(source._row_group_bytes(g) for g in source.row_groups)
    assert row_group >= 300 * C * 4  # the values' bytes at least
    monkeypatch.setattr(arrow.pa, "cpu_count", lambda: 8)
    monkeypatch.setattr(arrow, "PARQUET_READAHEAD_BYTES", 3 * row_group)
    assert source.readahead() == 3
    monkeypatch.setattr(arrow, "PARQUET_READAHEAD_BYTES", row_group - 1)
    assert source.readahead() == 7  # too large to hold: each decoded ahead in part
    want = fastal.top_k(probs, 10, "ratio")
    got = fastal.top_k(ParquetSource(path), 10, "ratio", chunk_rows=64)
    np.testing.assert_array_equal(got.indices, want.indices)
    monkeypatch.setattr(arrow.pa, "cpu_count", lambda: 1)
    monkeypatch.setattr(arrow, "PARQUET_READAHEAD_BYTES", 1 << 40)
    assert source.readahead() == 0
    assert ParquetSource(path, readahead=5).readahead() == 5


def _started_units(monkeypatch):
    """The first row group of every unit a decoding thread starts (threads append in any order)."""
    started = []
    iter_batches = arrow.pq.ParquetFile.iter_batches

    def spy(self, *args, row_groups=None, **kwargs):
        started.append(row_groups[0])
        return iter_batches(self, *args, row_groups=row_groups, **kwargs)
    monkeypatch.setattr(arrow.pq.ParquetFile, "iter_batches", spy)
    return started


@pytest.mark.parametrize("spare_fits", [True, False])
def test_a_thread_that_finishes_its_unit_starts_the_next(tmp_path, probs, monkeypatch,
                                                         spare_fits):
    """While the scan holds the first unit, the threads decode the unit after it and, if
    the byte budget holds it, one spare unit: never more; the rows stay in file order."""
    path = write(tmp_path / "pool.parquet", probs, 100)
    source = ParquetSource(path, id_column="id", readahead=1)
    unit = max(source._row_group_bytes(g) for g in source.row_groups)
    monkeypatch.setattr(arrow, "PARQUET_READAHEAD_BYTES", (2 if spare_fits else 1) * unit)
    started = _started_units(monkeypatch)
    want = [0, 1, 2] if spare_fits else [0, 1]
    ids = []
    for chunk in source.chunks(100):
        if chunk.start == 0:  # hold the scan on the first unit until the threads are done
            for _ in range(1000):  # up to 10 s on a busy machine
                if len(started) >= len(want):
                    break
                threading.Event().wait(0.01)
            threading.Event().wait(0.2)  # time for a unit too many to start
            assert sorted(started) == want
        ids.append(chunk.ids)
    np.testing.assert_array_equal(np.concatenate(ids), np.arange(N) * 3 + 1)
    assert sorted(started) == list(range(N // 100))
    assert not fastal_threads()


@pytest.mark.parametrize("layout", ["fixed", "columns"])
def test_units_over_the_budget_are_decoded_ahead_in_part(tmp_path, probs, monkeypatch, layout):
    """A unit larger than the byte budget (pyarrow's default 1M-row groups) is decoded
    beside the one being scanned, up to half the budget, then waits for the scan."""
    path = write(tmp_path / "pool.parquet", probs, 1000, layout=layout)
    column = [f"p{j}" for j in range(C)] if layout == "columns" else None
    source = ParquetSource(path, column, id_column="id")
    unit = max(source._row_group_bytes(g) for g in source.row_groups)
    monkeypatch.setattr(arrow.pa, "cpu_count", lambda: 2)
    monkeypatch.setattr(arrow, "PARQUET_READAHEAD_BYTES", unit - 1)
    assert source.readahead() == 1
    cap = (unit - 1) // 2
    units = []

    class Recorded(arrow._Unit):
        def __init__(self, *args):
            super().__init__(*args)
            units.append(self)
    monkeypatch.setattr(arrow, "_Unit", Recorded)
    ids = []
    for chunk in source.chunks(50):
        if chunk.start == 0:  # hold the scan on the first unit until the second's decoder waits
            seen, still = None, 0
            for _ in range(1000):  # up to 10 s on a busy machine
                held = units[1].held if len(units) > 1 else None
                still = still + 1 if held and held == seen else 0
                if still >= 20:  # unchanged for 0.2 s
                    break
                seen = held
                threading.Event().wait(0.01)
            assert len(units) == 2  # no third unit while the second is held
            whole = pq.read_table(path, columns=source.columns.read).slice(1000, 1000).nbytes
            batch = whole / 1000 * 50 * (4 if layout == "columns" else 1)
            assert 0 < held <= cap + batch + 1, (held, cap, batch)
            assert held < whole  # decoded in part, not in full
        ids.append(chunk.ids)
    np.testing.assert_array_equal(np.concatenate(ids), np.arange(N) * 3 + 1)
    assert len(units) == 3 and not fastal_threads()
    got = fastal.top_k(ParquetSource(path, column, id_column="id"), 10, "margin", chunk_rows=64)
    want = fastal.top_k(probs, 10, "margin")
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_array_equal(got.scores, want.scores)


@pytest.mark.parametrize("readahead", [1, 3])
def test_no_rows_lost_when_decoders_pause_after_their_last_batch(tmp_path, probs, monkeypatch,
                                                                 readahead):
    """A decoding thread paused right after queueing a unit's end (its unit can be scanned
    and dropped meanwhile) must not leave the scan thinking nothing is left to start."""
    path = write(tmp_path / "pool.parquet", probs, 100)

    class PausingQueue(queue.SimpleQueue):
        def put(self, item, *args, **kwargs):
            super().put(item, *args, **kwargs)
            if item is arrow._END and threading.current_thread().name.startswith("fastal"):
                time.sleep(0.02)
    monkeypatch.setattr(arrow.queue, "SimpleQueue", PausingQueue)
    source = ParquetSource(path, id_column="id", readahead=readahead)
    chunks = list(source.chunks(100))
    np.testing.assert_array_equal(np.concatenate([c.ids for c in chunks]), np.arange(N) * 3 + 1)
    np.testing.assert_array_equal(np.concatenate([c.values for c in chunks]), probs)
    assert not fastal_threads()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(groups=st.lists(st.integers(1, 400), min_size=1, max_size=8),
       files=st.integers(1, 3),
       budget_units=st.sampled_from([0.001, 0.4, 0.9, 1.5, 3.0, 100.0]),
       readahead=st.sampled_from([None, 1, 2, 3]), cores=st.integers(2, 4),
       chunk_rows=st.integers(1, 500), layout=st.sampled_from(["fixed", "columns"]))
def test_any_budget_gives_every_row_once_in_order(tmp_path_factory, probs, monkeypatch, groups,
                                                  files, budget_units, readahead, cores,
                                                  chunk_rows, layout):
    """Row groups of random sizes in one file or a directory of several, byte budgets from
    far under one unit (decoded ahead in part) to many units, any readahead and chunk
    size: every row once, in order, with its id, and no decoding thread left behind."""
    directory = tmp_path_factory.mktemp("pool")
    n = sum(groups)
    values = probs[:n] if n <= N else np.concatenate([probs] * (n // N + 1))[:n]
    table = pool_table(values, layout)
    files = min(files, len(groups))
    per_file = -(-len(groups) // files)
    start = 0
    for f in range(0, len(groups), per_file):
        with pq.ParquetWriter(directory / f"part-{f:03d}.parquet", table.schema) as writer:
            for rows in groups[f:f + per_file]:
                writer.write_table(table.slice(start, rows))
                start += rows
    column = [f"p{j}" for j in range(C)] if layout == "columns" else None
    paths = sorted(directory.iterdir())
    sources = [ParquetSource(p, column, id_column="id") for p in paths]
    unit = max(s._row_group_bytes(g) for s in sources for g in s.row_groups)
    monkeypatch.setattr(arrow, "PARQUET_READAHEAD_BYTES", max(1, int(budget_units * unit)))
    monkeypatch.setattr(arrow.pa, "cpu_count", lambda: cores)
    if len(paths) == 1:
        source = ParquetSource(paths[0], column, id_column="id", readahead=readahead)
    else:  # a directory: the default readahead
        source = fastal.io.as_source(str(directory), column=column, id_column="id")
    chunks = list(source.chunks(chunk_rows))
    assert [c.start for c in chunks] == [0] + [c.stop for c in chunks[:-1]]
    assert all(c.values.shape[0] <= chunk_rows for c in chunks)
    np.testing.assert_array_equal(np.concatenate([c.values for c in chunks]), values)
    np.testing.assert_array_equal(np.concatenate([c.ids for c in chunks]), np.arange(n) * 3 + 1)
    assert not fastal_threads()


def write_directory(directory, values, cuts, layout, row_group_rows=400):
    """Files of rows cuts[i]:cuts[i + 1] (ids 3 * row + 1 across the files)."""
    directory.mkdir()
    for i, (lo, hi) in enumerate(zip(cuts, cuts[1:])):
        table = pool_table(values[lo:hi], layout)
        table = table.set_column(0, "id", pa.array(np.arange(lo, hi, dtype=np.int64) * 3 + 1))
        pq.write_table(table, directory / f"part-{i:03d}.parquet", row_group_size=row_group_rows)
    return directory


@pytest.mark.parametrize("over_budget", [False, True])
@pytest.mark.parametrize("layout", ["fixed", "columns"])
def test_a_directory_is_decoded_as_one_sequence_of_units(tmp_path, probs, monkeypatch, layout,
                                                         over_budget):
    """The files' units decode on threads as one sequence (the next file while the scan
    reads this one), also units over the byte budget (decoded ahead in part): rows, ids
    and scores as in memory, for any chunk size."""
    cuts = [0, 700, 1500, 1501, 2200, 3000]  # one file of one row, files of 1-2 row groups
    directory = write_directory(tmp_path / "pool", probs, cuts, layout)
    if over_budget:
        monkeypatch.setattr(arrow, "PARQUET_READAHEAD_BYTES", 1000)
    column = [f"p{j}" for j in range(C)] if layout == "columns" else None
    calls = []
    decode_in_order = arrow._decode_in_order

    def spy(tasks, *args):
        calls.append(sorted({source.path for source, _ in tasks}))
        return decode_in_order(tasks, *args)
    monkeypatch.setattr(arrow, "_decode_in_order", spy)
    want = fastal.top_k(probs, 30, "margin")
    for chunk_rows in (64, 333, None):
        source = fastal.io.as_source(str(directory), column=column, id_column="id")
        chunks = list(source.chunks(chunk_rows))
        assert calls[-1] == sorted(str(directory / f"part-{i:03d}.parquet") for i in range(5))
        assert [c.start for c in chunks] == [0] + [c.stop for c in chunks[:-1]]
        np.testing.assert_array_equal(np.concatenate([c.values for c in chunks]), probs)
        np.testing.assert_array_equal(np.concatenate([c.ids for c in chunks]), np.arange(N) * 3 + 1)
        got = fastal.top_k(str(directory), 30, "margin", column=column, id_column="id",
                           chunk_rows=chunk_rows)
        np.testing.assert_array_equal(got.indices, want.indices)
        np.testing.assert_array_equal(got.scores, want.scores)
        np.testing.assert_array_equal(got.ids, want.indices * 3 + 1)
    assert not fastal_threads()


def test_a_directory_of_files_without_row_groups(tmp_path, probs):
    """Files with no row group (a writer closed before any row) hold no units: the scan of
    the directory gives the other files' rows, or none."""
    directory = tmp_path / "pool"
    directory.mkdir()
    schema = pool_table(probs[:1]).schema
    for name in ("a", "b"):
        pq.ParquetWriter(directory / f"{name}.parquet", schema).close()
    source = fastal.io.as_source(str(directory), id_column="id")
    assert source.n_rows == 0 and list(source.chunks(100)) == []
    pq.write_table(pool_table(probs[:500]), directory / "c.parquet", row_group_size=100)
    source = fastal.io.as_source(str(directory), id_column="id")
    values = np.concatenate([c.values for c in source.chunks(64)])
    np.testing.assert_array_equal(values, probs[:500])


def test_a_directory_names_the_file_it_cannot_read(tmp_path, probs):
    cuts = [0, 1000, 2000, 3000]
    bad = probs.copy()
    bad[2100, 1] = np.nan
    directory = write_directory(tmp_path / "pool", bad, cuts, "columns")
    column = [f"p{j}" for j in range(C)]
    with pytest.raises(FastalError, match=r"row 2100"):
        fastal.top_k(str(directory), 5, "margin", column=column)
    nulls = pool_table(probs[:1000], "columns")
    nulls = nulls.set_column(2, "p1", pa.array([None] + [0.5] * 999, pa.float32()))
    pq.write_table(nulls, directory / "part-001.parquet", row_group_size=400)
    with pytest.raises(FastalError, match=r"part-001.parquet is null at row 0"):
        fastal.top_k(str(directory), 5, "margin", column=column)
    directory = write_directory(tmp_path / "pool2", probs, cuts, "columns")
    path = directory / "part-002.parquet"
    meta = pq.ParquetFile(path).metadata
    offset = meta.row_group(1).column(1).data_page_offset
    data = bytearray(path.read_bytes())
    data[offset:offset + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    with pytest.raises(FileError, match=r"cannot read .*part-002.parquet"):
        fastal.top_k(str(directory), 5, "margin", column=column)
    assert not fastal_threads()


def test_small_row_groups_are_decoded_together(tmp_path, probs, monkeypatch):
    path = write(tmp_path / "pool.parquet", probs, 100)
    source = ParquetSource(path, id_column="id", readahead=2)
    one = source._row_group_bytes(0)
    monkeypatch.setattr(arrow, "PARQUET_TASK_BYTES", 3 * one - 1)
    tasks = source._tasks()
    assert tasks[0] == [0, 1, 2] and sum(tasks, []) == list(range(30))
    got = fastal.top_k(source, 30, "least_confidence", chunk_rows=77)
    want = fastal.top_k(probs, 30, "least_confidence")
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_array_equal(got.ids, want.indices * 3 + 1)


@pytest.mark.parametrize("over_budget", [False, True])  # True: units decoded ahead in part
def test_bad_values_stop_the_decoders(tmp_path, probs, monkeypatch, over_budget):
    if over_budget:
        monkeypatch.setattr(arrow, "PARQUET_READAHEAD_BYTES", 1000)
    bad = probs.copy()
    bad[2500, 1] = np.nan
    path = write(tmp_path / "pool.parquet", bad, 100)
    with pytest.raises(FastalError, match="row 2500"):
        fastal.top_k(ParquetSource(path, readahead=3), 5, "margin", chunk_rows=64)
    assert not fastal_threads()


@pytest.mark.parametrize("over_budget", [False, True])
def test_corrupt_row_group_is_a_file_error(tmp_path, probs, monkeypatch, over_budget):
    if over_budget:
        monkeypatch.setattr(arrow, "PARQUET_READAHEAD_BYTES", 1000)
    path = write(tmp_path / "pool.parquet", probs, 300)
    meta = pq.ParquetFile(path).metadata
    offset = meta.row_group(6).column(1).data_page_offset
    data = bytearray(path.read_bytes())
    data[offset:offset + 64] = b"\xff" * 64
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(bytes(data))
    for readahead in (None, 0, 2):
        with pytest.raises(FileError, match="cannot read .*broken.parquet"):
            fastal.top_k(ParquetSource(broken, readahead=readahead), 5, "margin", chunk_rows=64)
    assert not fastal_threads()


MEMORY_CODE = """
import pyarrow as pa, fastal
from fastal.io import convert
import fastal.io.arrow as arrow
arrow.PARQUET_TASK_BYTES = 1  # one row group per unit
pa.set_cpu_count(max(2, pa.cpu_count()))  # decode ahead even on one core (or OMP_NUM_THREADS=1)
peak = pa.default_memory_pool().max_memory
for name in ("small", "big"):
    convert(f"{dir}/{{name}}.parquet", f"{dir}/{{name}}.arrow", batch_rows=1 << 14)
    print("CONVERT-" + name, peak())
for name in ("small", "big"):
    source = arrow.ParquetSource(f"{dir}/{{name}}.parquet", id_column="id")
    assert source.readahead() >= 1, source.readahead()
    rows = sum(chunk.values.shape[0] for chunk in source.chunks())
    print("SCAN-" + name, peak())
"""


def test_scan_and_convert_memory_does_not_grow_with_the_file(tmp_path):
    """Arrow's peak allocation: about the same for a 3 MB and a 43 MB pool (0.8 MB row groups).

    The peak moves by a few row groups with the threads' timing (3.5 MB seen between two
    scans of a 14 MB pool), so the pools differ 15x: growing with the file would add ~40 MB.
    """
    rng = np.random.default_rng(0)
    n = 900_000
    values = rng.random((n, 10), dtype=np.float32)
    write(tmp_path / "small.parquet", values[:n // 15], 1 << 14, compression="none")
    write(tmp_path / "big.parquet", values, 1 << 14, compression="none")
    code = MEMORY_CODE.format(dir=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    peaks = {k: int(v) for k, v in (line.split() for line in done.stdout.splitlines())}
    # max_memory() is the peak so far: the big file may raise it by far less than the
    # 40 MB of data it has more (a few row groups in flight, whatever the file size).
    grown = n * (10 * 4 + 8) * 14 // 15
    assert peaks["CONVERT-big"] - peaks["CONVERT-small"] < grown / 4, peaks
    assert peaks["SCAN-big"] - peaks["SCAN-small"] < grown / 4, peaks
    assert peaks["SCAN-big"] < grown, peaks
