"""Arrow data: in-memory tables, Arrow IPC files (memory-mapped), Parquet files, directories.

The score column is either one ``fixed_size_list<float>`` / ``list<float>`` column or C
scalar float columns named by the caller. An optional id column (integer or string) is
carried through so results can name rows by id. Rows are numbered globally in reading order
(files of a directory in sorted path order), which is what ``Selection.indices`` refers to.
"""

from __future__ import annotations

import mmap
import os
import queue
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .._config import (MIN_CHUNK_ROWS, PARQUET_CHUNK_BYTES, PARQUET_READAHEAD_BYTES,
                       PARQUET_TASK_BYTES)
from .._errors import ArgumentError, DataError, FileError
from ._base import Chunk, Source, compute_dtype

_PARQUET_MAGIC = b"PAR1"
_RELEASE_BYTES = 16 << 20  # see IpcSource._release
_BUFFER_BYTES = 1 << 20  # Parquet column chunks are read through a buffer of this size
# Batches the decoder of the row groups being scored may run ahead of the scan (the units
# after it are decoded in full, or up to their byte cap). Measured, 10M x 10
# fixed_size_list snappy, 2 cores, best of 5 interleaved: 2 -> 70 % of read_table's rate,
# 8 -> 81 %, 32 -> 78 %; 8 MiB at 1 MiB chunks.
_FRONT_BATCHES = 8


# Record batches of a Parquet unit with one column per class hold up to this many chunks
# (cut into chunks by ArrowSource._convert): fewer reader calls per column. Measured, 10M x 10
# float32 + id, 262,144-row groups, 2 cores, a fresh process per setting (best of 3 scans;
# peak RSS added by the first scan after a warm-up), batches of 1 / 4 / 8 / 16 chunks:
# process CPU 1.68 / 1.42 / 1.45 / 1.38 s uncompressed, 2.88-2.97 / 2.37-2.49 / 2.39-2.43 /
# 2.30-2.41 s zstd; RSS added 20-30 MB at 1-4 chunks, 26-119 MB at 8-16 (zstd). List columns
# keep one chunk per batch (4-16 added 20-30 % of the file in RSS and saved nothing).
_COLUMN_BATCH_CHUNKS = 4
_END = object()  # a unit's last batch was queued
# What pyarrow raises on a file it cannot read (reported as FileError with the file's path).
_READ_ERRORS = (pa.ArrowInvalid, pa.ArrowException, OSError, UnicodeDecodeError)

_IPC_FILE_MAGIC = b"ARROW1"
_IPC_STREAM_MAGIC = b"\xff\xff\xff\xff"
_DATA_SUFFIXES = (".parquet", ".pq", ".arrow", ".feather", ".ipc", ".arrows")


def _equal_step(rows: int, most: int) -> int:
    """Rows per piece when ``rows`` are cut into equal pieces of at most ``most`` rows."""
    return -(-rows // max(1, -(-rows // max(1, most))))


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t)


def _is_real(t: pa.DataType) -> bool:
    return pa.types.is_floating(t) or pa.types.is_integer(t)


def _describe(schema: pa.Schema) -> str:
    return ", ".join(f"{f.name}: {f.type}" for f in schema)


def _to_numpy(arr: pa.Array) -> np.ndarray:
    """A null-free array as NumPy: a view when the type allows (numbers), else a copy.

    ``to_numpy(zero_copy_only=False)`` takes a slower path even where a view is possible:
    converting a 104,857-row chunk of ten float32 columns and an id took 3.2 ms that way,
    2.1 ms with views (most of the rest is interleaving the columns into rows).
    """
    try:
        return arr.to_numpy(zero_copy_only=True)
    except (pa.ArrowInvalid, pa.ArrowException):
        return arr.to_numpy(zero_copy_only=False)


def _check_unique(schema: pa.Schema, column: str, name: str) -> None:
    count = len(schema.get_all_field_indices(column))
    if count > 1:
        raise DataError(f"column {column!r} appears {count} times in {name}; the columns fastal "
                        f"reads must have unique names")


class _Columns:
    """Which columns of a schema hold the values and the ids, checked once.

    Three layouts: one list column (one vector per row); several scalar columns (one per
    class); several list columns of equal length (one per committee member, read as
    ``(rows, members * classes)``; ``n_members`` says how many).
    """

    def __init__(self, schema: pa.Schema, column, id_column, name: str):
        self.id_column = id_column
        self.n_members = 1
        if id_column is not None:
            if id_column not in schema.names:
                raise DataError(
                    f"id_column {id_column!r} not found in {name}; columns are: {_describe(schema)}"
                )
            _check_unique(schema, id_column, name)
            t = schema.field(id_column).type
            if not (pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t)):
                raise DataError(
                    f"id_column {id_column!r} must be an integer or string column; got {t}"
                )
        if column is None:
            candidates = [f.name for f in schema if _is_list(f.type) and f.name != id_column]
            if len(candidates) != 1:
                what = "no list column" if not candidates else f"several list columns {candidates}"
                raise DataError(
                    f"{name} has {what}; name the score column with column='...' (a "
                    f"list<float> column) or column=[...] (one float column per class). "
                    f"Columns are: {_describe(schema)}"
                )
            column = candidates[0]
        names = [column] if isinstance(column, str) else list(column)
        if len(names) < 1 or not all(isinstance(c, str) for c in names):
            raise ArgumentError(f"column must be a name or a list of names; got {column!r}")
        for c in names:
            if c not in schema.names:
                raise DataError(
                    f"column {c!r} not found in {name}; columns are: {_describe(schema)}"
                )
            _check_unique(schema, c, name)
        types = [schema.field(c).type for c in names]
        self.names = names
        self.is_list = _is_list(types[0])
        if isinstance(column, str) and not self.is_list:
            raise DataError(
                f"column {column!r} must be a list<float> or fixed_size_list<float> column "
                f"(one list per row); got {types[0]}. For one column per class pass column=[...]"
            )
        for c, t in zip(names, types):
            if _is_list(t) != self.is_list:
                raise ArgumentError(
                    f"columns {names} mix list and scalar columns; pass list columns (one per "
                    f"committee member) or scalar columns (one per class), not both")
            value_type = t.value_type if self.is_list else t
            if not _is_real(value_type):
                kind = "floats" if self.is_list else "a numeric column"
                raise DataError(f"column {c!r} must {'hold' if self.is_list else 'be'} {kind}; got {t}")
        value_types = [t.value_type if self.is_list else t for t in types]
        # Not DataType.to_pandas_dtype(): pyarrow 25 (the last for Python 3.10) imports pandas there.
        dtypes = {compute_dtype(pa.array([], type=v).to_numpy().dtype, f"column {c!r}")
                  for c, v in zip(names, value_types)}
        self.dtype = dtypes.pop() if len(dtypes) == 1 else np.dtype(np.float64)
        if self.is_list:
            self.n_members = len(names)
            sizes = {t.list_size if pa.types.is_fixed_size_list(t) else None for t in types}
            size = sizes.pop() if len(sizes) == 1 else None
            self.fixed_width = None if size is None else size * len(names)
        else:
            self.fixed_width = len(names)
        self.read = self.names + ([id_column] if id_column is not None else [])

    def _list_values(self, col, c, start, n, name, width):
        """(n, width) values of one list column of a batch (zero-copy when possible)."""
        if col.null_count:
            row = start + int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataError(f"column {c!r} of {name} is null at row {row}")
        if not pa.types.is_fixed_size_list(col.type) and n:
            lengths = np.diff(col.offsets.to_numpy())
            expected = width if width is not None else int(lengths[0])
            bad = np.flatnonzero(lengths != expected)
            if bad.size:
                raise DataError(
                    f"rows of list column {c!r} in {name} must all have the same "
                    f"length; row {start + int(bad[0])} has {int(lengths[bad[0]])} values, "
                    f"expected {expected}"
                )
        flat = col.flatten()
        if flat.null_count:
            pos = int(np.flatnonzero(flat.is_null().to_numpy(zero_copy_only=False))[0])
            w = len(flat) // max(n, 1)
            raise DataError(f"column {c!r} of {name} has a null value at row {start + pos // w}")
        values = _to_numpy(flat)
        values = values.reshape(n, -1) if n else values.reshape(0, width or 0)
        return np.ascontiguousarray(values, dtype=self.dtype)

    def to_chunk(self, batch: pa.RecordBatch, start: int, name: str, width: int | None) -> Chunk:
        """Convert a record batch to a chunk: zero-copy for one non-null float list column."""
        n = batch.num_rows
        if self.is_list:
            per_member = None if width is None else width // self.n_members
            parts = [self._list_values(batch.column(c), c, start, n, name, per_member)
                     for c in self.names]
            values = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        else:
            cols = []
            for c in self.names:
                arr = batch.column(c)
                if arr.null_count:
                    row = start + int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
                    raise DataError(f"column {c!r} of {name} is null at row {row}")
                cols.append(_to_numpy(arr))
            # Column-major: one contiguous copy per column (no strided interleave into rows,
            # and the uncertainty kernels then read whole columns instead of transposing
            # rows back: see lane_view); every other consumer indexes any layout.
            columns = np.empty((len(cols), n), dtype=self.dtype)
            for j, c in enumerate(cols):
                columns[j] = c
            values = columns.T
        ids = None
        if self.id_column is not None:
            arr = batch.column(self.id_column)
            if arr.null_count:
                row = start + int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
                raise DataError(f"id_column {self.id_column!r} of {name} is null at row {row}")
            try:
                ids = _to_numpy(arr)
            except (pa.ArrowException, UnicodeDecodeError) as exc:  # e.g. ids that are not UTF-8
                raise FileError(f"id_column {self.id_column!r} of {name} cannot be read in the "
                                f"rows from {start} (a corrupt file?): {exc}") from exc
        return Chunk(start, values, ids)


class ArrowSource(Source):
    """Common logic of the Arrow-backed sources; subclasses provide ``_batches``."""

    def _setup(self, schema, column, id_column, name):
        self.name = name
        self.columns = _Columns(schema, column, id_column, name)
        self.dtype = self.columns.dtype
        self.has_ids = id_column is not None
        self.n_members = self.columns.n_members
        self.width = self.columns.fixed_width
        if self.width is None:
            self.width = self._peek_width()

    def _peek_width(self) -> int:
        for batch in self._batches(1024):
            if batch.num_rows:
                col = batch.column(self.columns.names[0])
                first = col[0]
                return 0 if not first.is_valid else len(first) * self.columns.n_members
        return 0

    def _batches(self, chunk_rows):  # pragma: no cover - abstract
        raise NotImplementedError

    def _release(self, chunk):
        """Hook run after a chunk was consumed (memory-mapped sources drop its pages)."""

    def _convert(self, batch, start, chunk_rows):
        """The chunks of one record batch whose first row is pool row ``start``.

        Columns per class are copied into one array per chunk: a batch longer than a chunk is
        cut into equal pieces first (zero-copy slices), so each copy stays chunk-sized (and
        in cache for the kernels that read it next) and a short last piece does not make
        ``Source.chunks`` concatenate.
        """
        n = batch.num_rows
        step = n if self.columns.is_list else _equal_step(n, chunk_rows)
        for lo in range(0, n, max(step, 1)):
            part = batch if step == n else batch.slice(lo, step)
            chunk = self.columns.to_chunk(part, start + lo, self.name, self.width)
            if chunk.values.shape[1] != self.width:
                raise DataError(
                    f"rows of {self.name} must all have {self.width} values; the rows "
                    f"from {start + lo} have {chunk.values.shape[1]}"
                )
            yield chunk

    def _pieces(self, chunk_rows):
        start = 0
        for batch in self._batches(chunk_rows):
            for chunk in self._convert(batch, start, chunk_rows):
                yield chunk
                self._release(chunk)
            start += batch.num_rows


class TableSource(ArrowSource):
    """A ``pyarrow.Table`` or ``RecordBatch`` in memory."""

    def __init__(self, table, column=None, id_column=None, name="table"):
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        self.table = table
        self.n_rows = table.num_rows
        self._setup(table.schema, column, id_column, name)

    def _batches(self, chunk_rows):
        for batch in self.table.select(self.columns.read).to_batches(max_chunksize=chunk_rows):
            yield batch


class IpcSource(ArrowSource):
    """An Arrow IPC file (file or stream format), memory-mapped and read zero-copy.

    Consumed chunks' pages are dropped from this process's mapping, 16 MiB at a time
    (``madvise(MADV_DONTNEED)``; they stay in the page cache), so the resident memory of a
    scan stays O(chunk + 16 MiB) however large the file is.
    """

    def __init__(self, path, column=None, id_column=None):
        self.path = str(path)
        try:
            with open(self.path, "rb") as f:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            self._buffer = pa.py_buffer(self._map)
            self._is_file = bytes(self._map[:6]) == _IPC_FILE_MAGIC
            schema, self.n_rows = self._scan()
        except (pa.ArrowInvalid, pa.ArrowException, OSError, ValueError) as exc:
            raise FileError(f"cannot read {self.path} as an Arrow IPC file: {exc}") from exc
        self._setup(schema, column, id_column, self.path)

    def _reader(self):
        if self._is_file:
            return pa.ipc.open_file(self._buffer)
        return pa.ipc.open_stream(self._buffer)

    def _all_batches(self):
        reader = self._reader()
        if self._is_file:
            for i in range(reader.num_record_batches):
                yield reader.get_batch(i)
        else:
            yield from reader

    def _scan(self):
        reader = self._reader()
        n = sum(b.num_rows for b in self._all_batches())
        return reader.schema, n

    def _batches(self, chunk_rows):
        try:
            for batch in self._all_batches():
                batch = batch.select(self.columns.read)
                # IPC is read zero-copy and unchecked: a corrupt offset would crash the process
                # (segfault/abort in Arrow) instead of raising. Full validation of the columns
                # read costs ~1 % of a scan (2M rows with string ids: 22 ms).
                batch.validate(full=True)
                for lo in range(0, batch.num_rows, chunk_rows):
                    yield batch.slice(lo, chunk_rows)
        except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
            raise FileError(f"cannot read {self.path}: {exc}") from exc

    def _release(self, chunk):
        """Drop the pages of consumed chunks, 16 MiB at a time (or at the end of the scan).

        Chunks are consecutive in the file, so the pending range is one interval; one
        madvise per 16 MiB instead of one per chunk (each flushes TLBs) was measured 8 %
        faster on a 10M x 10 float32 scan, for at most 16 MiB more resident memory.
        """
        base, size = self._buffer.address, self._buffer.size
        for arr in (chunk.values, chunk.ids):
            if arr is None or arr.dtype == object or arr.size == 0:
                continue
            lo = arr.__array_interface__["data"][0]
            if base <= lo < base + size:
                first, end = lo - base, min(size, lo - base + arr.nbytes)
                if self._pending is None:
                    self._pending = [first, end]
                else:
                    self._pending = [min(self._pending[0], first), max(self._pending[1], end)]
        if self._pending is not None and self._pending[1] - self._pending[0] >= _RELEASE_BYTES:
            self._flush()

    def _flush(self):
        first, end = self._pending
        self._pending = None
        first = first // mmap.PAGESIZE * mmap.PAGESIZE
        if end > first:
            self._map.madvise(mmap.MADV_DONTNEED, first, end - first)

    def _pieces(self, chunk_rows):
        self._pending = None
        try:
            yield from super()._pieces(chunk_rows)
        finally:
            if self._pending is not None:
                self._flush()


def _row_width(t) -> float:
    """Rough bytes per row of an Arrow type (variable-length values guessed at 16 items)."""
    if pa.types.is_fixed_size_list(t):
        return t.list_size * _row_width(t.value_type)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return 16 * _row_width(t.value_type)
    if pa.types.is_struct(t):
        return sum(_row_width(t.field(i).type) for i in range(t.num_fields)) or 1.0
    try:
        return max(t.bit_width / 8, 1 / 8)
    except ValueError:  # strings, binary and other variable-width types
        return 16.0


class ParquetSource(ArrowSource):
    """A Parquet file, several row groups decoded at once on threads, rows in file order.

    The row groups are cut into units of about ``PARQUET_TASK_BYTES`` (one row group, or
    several consecutive small ones). Each unit in flight is decoded by its own thread (one
    ``ParquetFile`` handle per thread, record batch by record batch into a queue); the scan
    takes the batches of the oldest unit as they arrive, and a thread that finishes a unit
    starts the next one in file order. Decoding releases the GIL, so on C cores C units are
    decoded at once, as ``pq.read_table`` decodes row groups, while the caller scores the
    current batch (its Numba kernels then run on the scanning thread alone).

    Memory stays O(budget), not O(file): the decoder of the unit being scored waits when
    ``_FRONT_BATCHES`` of its batches are queued, and only the ``readahead`` units after it
    (and one spare, if it fits too) are decoded ahead of the scan, in full while they fit
    ``PARQUET_READAHEAD_BYTES`` (uncompressed sizes, from the footer), larger ones in part
    (see ``_decode_in_order``); a file of one unit is streamed batch by batch on one
    background thread. The files of a directory are decoded as one sequence of units
    (``ConcatSource``). Column chunks are read through a 1 MiB buffered stream, not
    pre-buffered: pre-buffering holds a row group's compressed column chunks as well, and
    was no faster on local files (within noise, 4M x 10 float32, three codecs).

    Parameters
    ----------
    path : str or os.PathLike
    column, id_column : see :func:`fastal.io.as_source`
    row_groups : sequence of int, optional
        Read only these row groups, in this order (default: all of them).
    readahead : int, optional
        Units decoded ahead of the one being scored (default: cores - 1, fewer if fewer
        fit the byte budget; units over the budget are decoded ahead in part, within
        it). 0 reads one batch at a time on the calling thread, which is what a
        cluster worker running one task per core wants.
    """

    def __init__(self, path, column=None, id_column=None, *, row_groups=None, readahead=None):
        self.path = str(path)
        try:
            self.file = pq.ParquetFile(self.path, pre_buffer=False, buffer_size=_BUFFER_BYTES)
            self._read_share = None
        except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
            raise FileError(f"cannot read {self.path} as a Parquet file: {exc}") from exc
        meta = self.file.metadata
        if row_groups is None:
            self.row_groups = list(range(meta.num_row_groups))
            self.n_rows = meta.num_rows
        else:
            self.row_groups = [int(g) for g in row_groups]
            self.n_rows = int(sum(meta.row_group(g).num_rows for g in self.row_groups))
        self._readahead = readahead
        self._setup(self.file.schema_arrow, column, id_column, self.path)

    def default_chunk_rows(self) -> int:
        # Record batches are decoded at this size and scored as they are (no concatenation):
        # small batches keep each decoding thread's working set small (see
        # PARQUET_CHUNK_BYTES); a kernel call per 1 MiB is cheap next to decoding it.
        row_bytes = max(1, self.width * self.dtype.itemsize)
        return max(MIN_CHUNK_ROWS, PARQUET_CHUNK_BYTES // row_bytes)

    def _row_group_bytes(self, g: int) -> int:
        """Uncompressed bytes of the columns we read in row group ``g``, estimated.

        The row group's total size times the read columns' share of a row's width (from the
        schema), never from per-column footer metadata: on a corrupt footer pyarrow's
        ``RowGroupMetaData.column(j)`` aborts the whole process (an uncaught C++ exception,
        pyarrow 26), where reading raises an ordinary error. Only the decoding units'
        sizes depend on it, never a result.
        """
        if self._read_share is None:
            schema = self.file.schema_arrow
            wanted = set(self.columns.read)
            widths = [(_row_width(f.type), f.name in wanted) for f in schema]
            total = sum(w for w, _ in widths)
            self._read_share = (sum(w for w, read in widths if read) / total) if total else 1.0
        rg = self.file.metadata.row_group(g)
        return max(1, int(rg.total_byte_size * self._read_share))

    def _tasks(self) -> list[list[int]]:
        """Consecutive row groups decoded as one unit, each of about PARQUET_TASK_BYTES.

        Tiny row groups are grouped so that the per-unit cost (a reader, a thread hand-off)
        stays small; a row group larger than that is a unit of its own.
        """
        tasks, current, size = [], [], 0
        for g in self.row_groups:
            current.append(g)
            size += self._row_group_bytes(g)
            if size >= PARQUET_TASK_BYTES:
                tasks.append(current)
                current, size = [], 0
        if current:
            tasks.append(current)
        return tasks

    def readahead(self) -> int:
        """Units of row groups decoded ahead of the one being scored (0: one batch at a time)."""
        if self._readahead is not None:
            return max(0, int(self._readahead))
        return _default_ahead([(self, task) for task in self._tasks()])

    def _batches(self, chunk_rows):
        rows = 0
        try:
            ahead = self.readahead()  # reads column paths from the footer: may not be UTF-8
            if ahead:
                batches = self._parallel(chunk_rows, ahead)
            else:
                batches = self._streamed(chunk_rows, background=self._readahead != 0)
            for batch in batches:
                rows += batch.num_rows
                yield batch
        except FileError:
            raise
        except _READ_ERRORS as exc:
            raise FileError(f"cannot read {self.path}: {exc}") from exc
        _check_rows(self, rows)

    def _peek_width(self) -> int:
        for batch in self._streamed(1024, background=False):
            if batch.num_rows:
                first = batch.column(self.columns.names[0])[0]
                return 0 if not first.is_valid else len(first) * self.columns.n_members
        return 0

    def _streamed(self, batch_rows, background=True):
        """Record batches of the row groups in order, on one thread (memory O(batch)).

        With ``background`` the next batch is decoded on a thread while the caller scores
        the current one, one column per class with pyarrow's threads.
        """
        # One column per class: batches of up to _COLUMN_BATCH_CHUNKS chunks, as in _parallel
        # (10M x 10 float32 in 3.4M-row groups, 2 cores, best of 4 scans in two processes:
        # 0.31-0.38 -> 0.25-0.27 s uncompressed, 0.43-0.47 -> 0.35-0.38 s snappy; decoding
        # a half of the columns on each of two threads of ours was no faster, 0.31-0.40 s
        # and 0.35-0.39 s).
        # With ``background``, pyarrow's threads decode a batch's columns at once (10M x 10 in
        # 1M-row groups, best of 4 scans in two processes: zstd 0.76 -> 0.52-0.53 s, snappy
        # 0.42 -> 0.35 s, uncompressed 0.29 -> 0.28-0.32 s; a list column, one column, is
        # not split: 0.89-0.92 s either way). Without, one thread does everything.
        most = batch_rows if self.columns.is_list else batch_rows * _COLUMN_BATCH_CHUNKS
        batches = self.file.iter_batches(batch_size=most, columns=self.columns.read,
                                         row_groups=self.row_groups,
                                         use_threads=background and not self.columns.is_list)
        if not background:
            yield from batches
            return
        with ThreadPoolExecutor(1, thread_name_prefix="fastal-parquet") as pool:
            pending = pool.submit(next, batches, None)
            while True:
                batch = pending.result()
                if batch is None:
                    return
                pending = pool.submit(next, batches, None)
                yield batch

    def _parallel(self, batch_rows, ahead: int):
        """Record batches in file order; ``ahead + 1`` units of row groups decoded at once."""
        tasks = [(self, task) for task in self._tasks()]
        for _, batch in _decode_in_order(tasks, batch_rows, ahead):
            yield batch

    def _unit_batches(self, task, batch_rows, local):
        """The record batches of one unit of row groups, read with this thread's handle of
        the file (``local``: the decoding thread's storage)."""
        handles = local.__dict__.setdefault("files", {})
        handle = handles.get(self.path)
        meta = self.file.metadata
        if handle is None:
            handle = handles[self.path] = pq.ParquetFile(
                self.path, metadata=meta, pre_buffer=False, buffer_size=_BUFFER_BYTES)
        # One column per class: batches of up to _COLUMN_BATCH_CHUNKS chunks (see there).
        most = batch_rows if self.columns.is_list else batch_rows * _COLUMN_BATCH_CHUNKS
        # Equal batches: a short last batch per unit would make Source.chunks concatenate
        # (copy) every later chunk to full size.
        step = _equal_step(sum(meta.row_group(g).num_rows for g in task), most)
        return handle.iter_batches(batch_size=max(1, step), columns=self.columns.read,
                                   row_groups=task, use_threads=False)


def _check_rows(source, rows: int) -> None:
    """Never a partial answer: the rows a scan of ``source`` read against its footer's count."""
    if rows != source.n_rows:
        raise FileError(f"cannot read {source.path}: {rows:,} rows read where its footer "
                        f"says {source.n_rows:,}")


def _units_that_fit(tasks) -> int:
    """Units of the largest size among ``tasks`` (``(ParquetSource, unit)`` pairs) that fit
    ``PARQUET_READAHEAD_BYTES``."""
    largest = max(sum(source._row_group_bytes(g) for g in task) for source, task in tasks)
    return PARQUET_READAHEAD_BYTES // max(1, largest)


def _default_ahead(tasks) -> int:
    """Units decoded ahead of the one being scanned by default: one per core but the
    scanning thread's, fewer if fewer fit the byte budget. Units larger than the budget
    are decoded ahead too, each only in part (see ``_decode_in_order``); a single unit
    (nothing to decode ahead) is streamed."""
    if len(tasks) < 2:
        return 0
    most = min(pa.cpu_count() - 1, len(tasks) - 1)
    fits = _units_that_fit(tasks)
    return int(max(0, min(fits, most) if fits else most))


def _decode_in_order(tasks, batch_rows, ahead: int):
    """``(source, batch)`` for the record batches of ``tasks`` (``(ParquetSource, unit of
    row groups)`` pairs) in task order, ``ahead + 1`` units decoded at once.

    Each unit is decoded by a thread of its own into a queue; the scan takes the batches of
    the oldest unit as they arrive. The unit being scanned waits at ``_FRONT_BATCHES``
    queued batches; the others at ``PARQUET_READAHEAD_BYTES`` shared among them, which
    holds them in full when they fit (the readahead was chosen so). Units started and not
    yet scanned in full: the one being scanned, the ``ahead`` after it and one spare if the
    byte budget holds a unit more than ``ahead``. A thread that finishes its unit starts
    the next at once (else it would wait for the scan to finish a unit, and one core would
    decode alone meanwhile). Measured, 10M x 10 float32, one column per class,
    uncompressed, 2 cores (best of 4 scans, 3 fresh processes each): 0.31-0.34 s with no
    spare unit, 0.29-0.31 s with one, 0.28-0.32 s with two.

    Units larger than the budget (pyarrow's default 1M-row groups at 10 classes with ids,
    Spark's 128 MB ones) are decoded ahead in part: up to half the budget each, so the
    thread that decodes the next unit works beside the one the scan reads from and
    pauses at the cap; memory stays O(budget), not O(row group).
    """
    fits = _units_that_fit(tasks)
    limit = ahead + 1 + (1 if fits > ahead else 0)
    cap = PARQUET_READAHEAD_BYTES // max(1, limit - 1) if fits else \
        PARQUET_READAHEAD_BYTES // (2 * max(1, ahead))
    local = threading.local()
    stop = threading.Event()
    taken = threading.Condition()  # the scan took a batch or moved to the next unit
    in_flight = deque()  # _Unit of each unit started, not scanned in full
    decoding = [0]  # units being decoded (at most a thread each)
    todo = iter(tasks)

    def must_wait(unit):  # with ``taken`` held
        if stop.is_set():
            return False
        if unit is in_flight[0]:
            # The unit being scored need not run far ahead of the scan.
            return unit.out.qsize() >= _FRONT_BATCHES
        return unit.held >= cap

    def decode(unit, task):
        try:
            for batch in unit.source._unit_batches(task, batch_rows, local):
                size = batch.nbytes
                with taken:
                    while must_wait(unit):
                        taken.wait()
                    if stop.is_set():
                        break
                    unit.held += size
                unit.out.put((batch, size))
            last = _END
        except BaseException as exc:  # handed to the scan, which raises it
            last = exc
        # This thread is free before the scan can see the unit's end: once the scan has
        # dropped the unit, its decoder no longer counts against the threads, so a scan with
        # no unit in flight has nothing left to start.
        with taken:
            decoding[0] -= 1
            if not stop.is_set():
                refill()
        unit.out.put(last)

    def refill():  # with ``taken`` held: start units in task order while there is room
        while len(in_flight) < limit and decoding[0] < ahead + 1:
            item = next(todo, None)
            if item is None:
                return
            unit = _Unit(item[0])
            in_flight.append(unit)
            decoding[0] += 1
            pool.submit(decode, unit, item[1])

    pool = ThreadPoolExecutor(ahead + 1, thread_name_prefix="fastal-parquet")
    try:
        with taken:
            refill()
        while in_flight:
            unit = in_flight[0]
            while (item := unit.out.get()) is not _END:
                if isinstance(item, FileError):
                    raise item
                if isinstance(item, _READ_ERRORS):
                    raise FileError(f"cannot read {unit.source.path}: {item}") from item
                if isinstance(item, BaseException):
                    raise item
                batch, size = item
                with taken:
                    unit.held -= size
                    taken.notify_all()
                # The decoders keep the other cores busy: the caller's kernels run on this
                # thread alone meanwhile (handing half of a 1 MiB chunk to a pool thread cost
                # more wall time than it saved, 2 cores).
                threads = numba.get_num_threads()
                numba.set_num_threads(1)
                try:
                    yield unit.source, batch
                finally:
                    numba.set_num_threads(threads)
            with taken:
                in_flight.popleft()
                refill()
                taken.notify_all()
    finally:
        # A scan that stops early (bad values in a chunk) must not leave decoders running.
        stop.set()
        with taken:
            taken.notify_all()
        pool.shutdown(wait=True, cancel_futures=True)


class _Unit:
    """A unit of row groups being decoded: its batches' queue and their bytes queued."""

    __slots__ = ("source", "out", "held")

    def __init__(self, source):
        self.source = source
        self.out = queue.SimpleQueue()
        self.held = 0


class ConcatSource(Source):
    """Several sources read one after another, rows numbered globally (a directory)."""

    def __init__(self, sources, name):
        first = sources[0]
        for s in sources[1:]:
            if s.width != first.width or s.has_ids != first.has_ids or s.n_members != first.n_members:
                raise DataError(
                    f"files in {name} disagree: {first.name} has {first.width} values per row, "
                    f"{s.name} has {s.width}"
                )
        self.sources = sources
        self.name = name
        self.n_rows = sum(s.n_rows for s in sources)
        self.width = first.width
        self.has_ids = first.has_ids
        self.n_members = first.n_members
        dtypes = {s.dtype for s in sources}
        self.dtype = dtypes.pop() if len(dtypes) == 1 else np.dtype(np.float64)

    def _pieces(self, chunk_rows):
        plan = self._parquet_plan()
        if plan is not None:
            yield from self._parquet_pieces(chunk_rows, *plan)
            return
        offset = 0
        for s in self.sources:
            for chunk in s.chunks(chunk_rows):
                yield self._rebased(chunk, offset)
            offset += s.n_rows

    def _rebased(self, chunk, offset):
        """A file's chunk numbered in the directory (its file starts at row ``offset``)."""
        return Chunk(offset + chunk.start, chunk.values.astype(self.dtype, copy=False),
                     chunk.ids)

    def _parquet_plan(self):
        """``(tasks, ahead)`` to decode the units of all files as one sequence
        (``_decode_in_order``), or None: for Parquet files only (default readahead). A
        directory of files of one row group each (as Spark writes them) then decodes the
        next file while the scan reads this one, instead of one file at a time on one
        thread."""
        sources = self.sources
        if len(sources) < 2 or not all(isinstance(s, ParquetSource) and s._readahead is None
                                       for s in sources):
            return None
        tasks = [(s, task) for s in sources for task in s._tasks()]
        ahead = _default_ahead(tasks)  # 0 for fewer than two units (files without row groups)
        return (tasks, ahead) if ahead >= 1 else None

    def _parquet_pieces(self, chunk_rows, tasks, ahead):
        offsets, offset = {}, 0
        for s in self.sources:
            offsets[id(s)] = offset
            offset += s.n_rows
        read = dict.fromkeys(offsets, 0)  # rows of each file read so far
        for source, batch in _decode_in_order(tasks, chunk_rows, ahead):
            start = read[id(source)]
            for chunk in source._convert(batch, start, chunk_rows):
                yield self._rebased(chunk, offsets[id(source)])
            read[id(source)] = start + batch.num_rows
        for s in self.sources:
            _check_rows(s, read[id(s)])


def file_source(path, column=None, id_column=None, *, readahead=None) -> Source:
    """Open one file, recognising Parquet and Arrow IPC by their magic bytes.

    ``readahead`` is passed to :class:`ParquetSource` (0: decode on the calling thread).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise FileError(f"cannot open {path}: {exc}") from exc
    if head[:4] == _PARQUET_MAGIC:
        return ParquetSource(path, column, id_column, readahead=readahead)
    if head[:6] == _IPC_FILE_MAGIC or head[:4] == _IPC_STREAM_MAGIC:
        return IpcSource(path, column, id_column)
    raise FileError(
        f"{path} is neither a Parquet file nor an Arrow IPC file (first bytes {head!r})"
    )


def pool_files(path) -> list[str]:
    """The Parquet / Arrow IPC files below a directory, in sorted path order (rows' order).

    Files and folders whose name starts with '.' or '_' are skipped, as pyarrow.dataset does.
    """
    files = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        files += [
            os.path.join(root, n) for n in names
            if not n.startswith((".", "_")) and n.lower().endswith(_DATA_SUFFIXES)
        ]
    if not files:
        raise FileError(
            f"directory {path} holds no Parquet or Arrow IPC files (looked for {', '.join(_DATA_SUFFIXES)})"
        )
    return sorted(files)


def directory_source(path, column=None, id_column=None) -> Source:
    """All Parquet / Arrow IPC files below a directory, in sorted path order (see pool_files)."""
    sources = [file_source(f, column, id_column) for f in pool_files(path)]
    return ConcatSource(sources, str(path))
