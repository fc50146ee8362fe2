"""The pool as a project sees it: its files, its ids (identity and order), a fingerprint.

Values (embeddings, probabilities) are read through :mod:`fastal.io`; this module only
reads the id column and a few named columns of picked rows, which ``fastal.io`` does not
offer. Files are listed in the order :func:`fastal.io.as_source` reads them (a test checks
that the two agree), so a row's position here is its position there.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .._errors import DataError, FileError

_SUFFIXES = (".parquet", ".pq", ".arrow", ".feather", ".ipc", ".arrows")
_PARQUET_MAGIC = b"PAR1"


def data_files(path, what: str = "pool") -> list[Path]:
    """The Parquet / Arrow IPC files of ``path`` in reading order (sorted; '.', '_' skipped)."""
    path = Path(path)
    if not path.exists():
        raise FileError(f"{what} path does not exist: {path}")
    if path.is_file():
        return [path]
    files = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        files += [Path(root) / n for n in names
                  if not n.startswith((".", "_")) and n.lower().endswith(_SUFFIXES)]
    if not files:
        raise FileError(f"{what} directory {path} holds no Parquet or Arrow IPC files "
                        f"(looked for {', '.join(_SUFFIXES)})")
    return sorted(files, key=str)


def _is_parquet(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == _PARQUET_MAGIC


def _batches(path: Path, columns, batch_rows: int = 1 << 16):
    """Record batches of ``columns`` of one file (Parquet streamed, IPC memory-mapped)."""
    try:
        if _is_parquet(path):
            f = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
            yield from f.iter_batches(batch_size=batch_rows, columns=columns, use_threads=False)
            return
        source = pa.memory_map(str(path))
        try:
            reader = pa.ipc.open_file(source)
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        except pa.ArrowInvalid:
            source.seek(0)
            batches = iter(pa.ipc.open_stream(source))
        for batch in batches:
            yield batch.select(columns)
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise FileError(f"cannot read {path}: {exc}") from exc


def schema(path, what: str = "pool") -> pa.Schema:
    """The Arrow schema of the first file of ``path``."""
    first = data_files(path, what)[0]
    try:
        if _is_parquet(first):
            return pq.ParquetFile(first).schema_arrow
        source = pa.memory_map(str(first))
        try:
            return pa.ipc.open_file(source).schema
        except pa.ArrowInvalid:
            source.seek(0)
            return pa.ipc.open_stream(source).schema
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise FileError(f"cannot read {first} as Parquet or Arrow IPC: {exc}") from exc


def id_type(t: pa.DataType, column: str, what: str) -> str:
    """'int' or 'str' for an id column's Arrow type, or a DataError."""
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "str"
    raise DataError(f"{what} id column {column!r} must hold integers or strings; got {t}")


def n_rows(files) -> int | None:
    """Rows of Parquet files from their footers (None when an IPC file is among them)."""
    total = 0
    for f in files:
        if not _is_parquet(f):
            return None
        try:
            total += pq.ParquetFile(f).metadata.num_rows
        except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
            raise FileError(f"cannot read {f} as a Parquet file: {exc}") from exc
    return total


def read_ids(path, column: str, what: str = "pool", progress=None) -> pa.ChunkedArray:
    """The id column of every file, in reading order, as int64 or string chunks."""
    files = data_files(path, what)
    if progress is not None:
        with progress(n_rows(files), f"reading {what} ids") as bar:
            return _read_ids(files, path, column, what, bar)
    return _read_ids(files, path, column, what, None)


def _read_ids(files, path, column, what, bar) -> pa.ChunkedArray:
    sch = schema(path, what)
    if column not in sch.names:
        raise DataError(f"{what} has no id column {column!r}; columns are: "
                        f"{', '.join(sch.names)}")
    kind = id_type(sch.field(column).type, column, what)
    target = pa.int64() if kind == "int" else pa.large_string()
    chunks = []
    for f in files:
        for batch in _batches(f, [column]):
            if batch.num_columns == 0 or batch.schema.names != [column]:
                raise DataError(f"{what} file {f} has no id column {column!r}")
            chunks.append(batch.column(0).cast(target))
            if bar is not None:
                bar.update(batch.num_rows)
    return pa.chunked_array(chunks, type=target)


def check_ids(ids: pa.ChunkedArray, column: str, what: str = "pool") -> None:
    """Ids are identity: refuse null and duplicated ids, naming a few."""
    if len(ids) == 0:
        raise DataError(f"{what} is empty: no rows in id column {column!r}")
    if ids.null_count:
        nulls = np.flatnonzero(ids.is_null().to_numpy(zero_copy_only=False))
        raise DataError(f"{what} id column {column!r} has {ids.null_count} null id(s), first "
                        f"at row {int(nulls[0])}; every row needs an id")
    if len(pc.unique(ids)) != len(ids):
        counts = pc.value_counts(ids)
        dup = pc.filter(counts, pc.greater(counts.field("counts"), 1))
        examples = ", ".join(repr(v) for v in dup.field("values")[:5].to_pylist())
        raise DataError(f"{what} id column {column!r} has {len(dup)} duplicated id(s) (e.g. "
                        f"{examples}); ids must be unique, they are the rows' identity")


def fingerprint(ids: pa.ChunkedArray) -> str:
    """SHA-256 of the ids in order: the same ids in the same order give the same value.

    Independent of how the column is chunked: lengths and bytes are hashed as two streams.
    """
    head = hashlib.sha256(f"{ids.type}:{len(ids)}".encode())
    data = hashlib.sha256()
    for chunk in ids.chunks:
        if pa.types.is_integer(chunk.type):
            data.update(np.ascontiguousarray(chunk.to_numpy(zero_copy_only=False),
                                             dtype="<i8").tobytes())
            continue
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64)[
            chunk.offset:chunk.offset + len(chunk) + 1]
        head.update(np.diff(offsets).astype("<i8").tobytes())
        data.update(memoryview(chunk.buffers()[2])[int(offsets[0]):int(offsets[-1])])
    return hashlib.sha256(head.digest() + data.digest()).hexdigest()


def to_python(ids) -> list:
    """Ids as Python ints or strs (what the ledger stores)."""
    return ids.to_pylist()


def as_arrow_ids(values, kind: str) -> pa.Array:
    return pa.array(values, type=pa.int64() if kind == "int" else pa.large_string())


def gather_rows(path, columns, positions: np.ndarray, what: str = "pool") -> pa.Table:
    """Rows at sorted ``positions`` of the named columns, in one streamed pass."""
    files = data_files(path, what)
    parts = []
    offset = 0
    lo = 0
    for f in files:
        for batch in _batches(f, list(columns)):
            stop = offset + batch.num_rows
            hi = int(np.searchsorted(positions, stop))
            if hi > lo:
                parts.append(batch.take(pa.array(positions[lo:hi] - offset)))
            lo = hi
            offset = stop
    if lo != positions.size:
        raise DataError(f"{what} has {offset} rows; position {int(positions[lo])} is past the end")
    if not parts:
        sch = schema(path, what)
        return pa.Table.from_batches([], schema=pa.schema([sch.field(c) for c in columns]))
    return pa.Table.from_batches(parts)


def stat_fingerprint(path, what: str) -> str:
    """Names, sizes and modification times of a file or directory's data files."""
    h = hashlib.sha256()
    for f in data_files(path, what):
        st = f.stat()
        h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def newest_mtime(path, what: str) -> float:
    return max(f.stat().st_mtime for f in data_files(path, what))
