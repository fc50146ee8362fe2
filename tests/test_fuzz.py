"""Fuzzed bad input: public entry points either answer correctly or raise FastalError.

Never a different exception type (a traceback from deep inside a kernel or NumPy), never
the bare root class (every user error says its kind: DataError, ArgumentError, ...), and
never a wrong-shaped answer. The hand-written corpus is ``tests/bad_inputs.py``.
"""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import fastal
from fastal import ArgumentError, DataError, FastalError, FileError, LedgerError

KINDS = (ArgumentError, DataError, FileError, LedgerError)

DTYPES = st.sampled_from([np.float32, np.float64, np.int32, np.int64, np.float16, np.bool_,
                          np.complex64, np.uint8])
SPECIAL = st.sampled_from([0.0, 1.0, -1.0, np.nan, np.inf, -np.inf, 1e30, -1e-5, 0.5])


@st.composite
def arrays(draw, max_dims=3):
    dtype = draw(DTYPES)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=6))
    if dtype in (np.bool_, np.complex64, np.uint8, np.int32, np.int64):
        return draw(hnp.arrays(dtype, shape))
    base = draw(hnp.arrays(np.float64, shape, elements=st.floats(0, 1)))
    if base.size and draw(st.booleans()):
        base.flat[draw(st.integers(0, base.size - 1))] = draw(SPECIAL)
    with np.errstate(all="ignore"):  # a special value (NaN, inf) makes NaN rows: on purpose
        if base.ndim >= 1 and base.size and draw(st.booleans()):
            base = base / np.maximum(base.sum(axis=-1, keepdims=True), 1e-12)
        return base.astype(dtype)


def check(call, n_rows=None):
    try:
        out = call()
    except FastalError as exc:
        assert type(exc) in KINDS, f"a bare {type(exc).__name__}: {exc}"
        return None
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=arrays(), method=st.sampled_from(fastal.METHODS + ("bogus",)),
       from_logits=st.booleans(), k=st.integers(-1, 8), chunk=st.sampled_from([None, 1, 3]))
def test_score_and_top_k_fuzz(data, method, from_logits, k, chunk):
    out = check(lambda: fastal.score(data, method, from_logits=from_logits, chunk_rows=chunk))
    if out is not None:
        assert out.dtype == np.float32 and out.ndim == 1
        assert not np.isnan(out).any()
    sel = check(lambda: fastal.top_k(data, k, method, from_logits=from_logits, chunk_rows=chunk))
    if sel is not None:
        assert len(sel) == k and np.unique(sel.indices).size == k


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=arrays(max_dims=2), strategy=st.sampled_from(list(fastal.STRATEGIES) + ["bogus"]),
       k=st.integers(-1, 6), labeled=st.one_of(st.none(), st.lists(st.integers(-2, 8), max_size=4)),
       seed=st.one_of(st.integers(0, 5), st.just(-1), st.none()))
def test_select_fuzz(data, strategy, k, labeled, seed):
    probs = None
    if fastal.STRATEGIES.get(strategy) is not None and \
            set(fastal.STRATEGIES[strategy].needs) == {"probs", "embeddings"}:
        n = data.shape[0] if data.ndim else 0
        probs = np.full((n, 2), 0.5)
    sel = check(lambda: fastal.select(data, k, strategy, probs=probs, labeled=labeled, seed=seed))
    if sel is not None:
        assert len(sel) == k and np.unique(sel.indices).size == k
        if labeled:
            assert not np.isin(sel.indices, labeled).any()


@pytest.mark.parametrize("junk", [None, "x", 3, 2.5, {"a": 1}, [[1, 2], [3]], object()])
def test_junk_objects(junk):
    for call in (lambda: fastal.score(junk, "margin"), lambda: fastal.top_k(junk, 1, "margin"),
                 lambda: fastal.select(junk, 1), lambda: fastal.kcenter(junk, 1)):
        with pytest.raises(FastalError) as info:
            call()
        assert type(info.value) in KINDS, info.value


@pytest.mark.parametrize("fmt", ["parquet-snappy", "parquet-none", "arrow", "arrows"])
def test_mutated_files_raise_a_kind_or_answer(tmp_path, fmt):
    """Random byte flips, overwrites and truncations of a small pool file: each read either
    answers (one score per row / k distinct rows) or raises a FileError/DataError; never
    another exception, never a crash of the process (a corrupt IPC offset once was one)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(14)
    probs = rng.dirichlet(np.ones(3), 12)
    table = pa.table({"probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.ravel()), 3),
                      "id": [f"r{i}" for i in range(12)]})
    base = tmp_path / f"base.{fmt.split('-')[0]}"
    if fmt.startswith("parquet"):
        pq.write_table(table, base, compression=fmt.split("-")[1], row_group_size=5)
    else:
        writer = pa.ipc.new_file if fmt == "arrow" else pa.ipc.new_stream
        with writer(str(base), table.schema) as w:
            w.write_table(table, max_chunksize=5)
    original = base.read_bytes()
    for trial in range(40):
        data = bytearray(original)
        mode = trial % 3
        if mode == 0:
            for _ in range(rng.integers(1, 4)):
                data[rng.integers(len(data))] = rng.integers(256)
        elif mode == 1:
            data = data[:rng.integers(len(data))]
        else:
            i = rng.integers(len(data))
            data[i:i + 8] = rng.bytes(8)
        path = tmp_path / f"m{trial}{base.suffix}"
        path.write_bytes(bytes(data))
        try:
            sel = fastal.top_k(path, 3, "margin", id_column="id")
            assert len(sel) == 3 and np.unique(sel.indices).size == 3
        except (FileError, DataError):
            pass
        try:
            scores = fastal.score(path, "entropy", chunk_rows=4)
            assert scores.ndim == 1 and scores.dtype == np.float32 and not np.isnan(scores).any()
        except (FileError, DataError):
            pass


def test_mutated_ledgers_raise_ledger_error_or_answer(tmp_path):
    """Byte flips, overwrites and truncations of a project's ledger: opening it and asking for
    its status raise LedgerError (SQLite's corrupt-page text once leaked a UnicodeDecodeError)
    or answer; SQLite keeps no checksums, so a flipped byte in a value can go unnoticed."""
    import shutil
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from bad_inputs import Files
    from fastal.project import Project

    files = Files(tmp_path)
    directory = files.project()
    with Project(directory) as project:
        batch = project.select(4, progress=None)
        project.label(files.labels_csv("l.csv", batch.ids[:2], ["a", "b"]), progress=None)
    original = (directory / "ledger.sqlite").read_bytes()
    rng = np.random.default_rng(1)
    for trial in range(60):
        copy = tmp_path / f"t{trial}"
        shutil.copytree(directory, copy)
        for extra in ("-wal", "-shm"):
            (copy / f"ledger.sqlite{extra}").unlink(missing_ok=True)
        data = bytearray(original)
        if trial % 3 == 0:
            for _ in range(rng.integers(1, 6)):
                data[rng.integers(len(data))] = rng.integers(256)
        elif trial % 3 == 1:
            data = data[:rng.integers(len(data))]
        else:
            i = rng.integers(len(data))
            data[i:i + 64] = rng.bytes(64)
        (copy / "ledger.sqlite").write_bytes(bytes(data))
        try:
            with Project(copy, readonly=True) as project:
                assert isinstance(project.status(), dict)
        except LedgerError:
            pass


def test_a_corrupt_footer_does_not_abort_the_parallel_parquet_reader(tmp_path):
    # pyarrow 26 aborts the process (an uncaught parquet::ParquetException, 'Definition
    # level histogram size mismatch') on RowGroupMetaData.column(j) of this footer, where
    # iter_batches raises OSError: ParquetSource must never touch per-column metadata.
    import subprocess
    import sys

    import pyarrow as pa
    import pyarrow.parquet as pq

    probs = np.random.default_rng(0).dirichlet(np.ones(3), 12)
    table = pa.table({"probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.ravel()), 3),
                      "id": [f"r{i}" for i in range(12)]})
    path = tmp_path / "pool.parquet"
    pq.write_table(table, path, compression="none", row_group_size=5)
    data = bytearray(path.read_bytes())
    for position, value in ((850, 52), (723, 37), (802, 87)):  # found by the byte-mutation run
        if position < len(data):
            data[position] = value
    path.write_bytes(bytes(data))
    code = ("import fastal\ntry:\n    fastal.top_k(%r, 3, 'margin', id_column='id')\n"
            "except fastal.FastalError as exc:\n    print(type(exc).__name__)\n" % str(path))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ,
                              "PYTHONPATH": str(Path(fastal.__file__).parent.parent)})
    assert run.returncode == 0, run.stderr[-500:]
