"""Rewrite a Parquet pool as one Arrow IPC file, streamed in bounded memory.

Scanning Parquet means decoding it on every pass; an uncompressed Arrow IPC file is read
memory-mapped and zero-copy (:class:`fastal.io.arrow.IpcSource`), several times faster. A
pool that is scored round after round pays the conversion once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .._errors import ArgumentError, DataError, FileError
from .arrow import _IPC_FILE_MAGIC, _IPC_STREAM_MAGIC, _PARQUET_MAGIC, pool_files

# Rows per written record batch: about this many bytes of the columns, read from the footer.
# Large enough that later scans slice record batches into chunks without copying (a batch
# smaller than half a chunk would be concatenated), small enough to bound the memory.
CONVERT_BATCH_BYTES = 32 << 20
IPC_SUFFIXES = (".arrow", ".feather", ".ipc")


@dataclass(frozen=True)
class Converted:
    """What :func:`convert` wrote.

    Attributes
    ----------
    path : pathlib.Path
        The Arrow IPC file.
    n_rows : int
    n_files : int
        Input files read (1 for a file, the data files of a directory).
    n_batches : int
        Record batches written.
    schema : pyarrow.Schema
    """

    path: Path
    n_rows: int
    n_files: int
    n_batches: int
    schema: pa.Schema


def convert(pool, out, *, columns=None, force: bool = False, batch_rows: int | None = None
            ) -> Converted:
    """Rewrite a Parquet file or a directory of Parquet / Arrow files as one Arrow IPC file.

    The rows are read record batch by record batch (memory O(batch), about
    ``CONVERT_BATCH_BYTES`` of decoded columns) and written uncompressed, in the order a
    scan of ``pool`` numbers them (files of a directory in sorted path order), so row
    positions and ids in selections from ``out`` are those from ``pool``. The file is
    written under a temporary name beside ``out`` (starting with '.', so a directory scan
    skips it), flushed to disk and renamed: a crash never leaves a partial file named
    ``out``.

    Parameters
    ----------
    pool : str or os.PathLike
        A Parquet file, an Arrow IPC file, or a directory of them.
    out : str or os.PathLike
        The Arrow IPC file to write; must end in .arrow, .feather or .ipc.
    columns : list of str, optional
        Columns to keep, in this order (default: all of them).
    force : bool, default False
        Replace ``out`` if it exists (otherwise that is an error).
    batch_rows : int, optional
        Rows per record batch written (default: about 32 MiB of the columns).

    Returns
    -------
    Converted

    Raises
    ------
    FileError
        ``pool`` is missing, unreadable, corrupt or not Parquet / Arrow; ``out`` exists
        (without ``force``), is a directory, lies inside ``pool`` or its folder is missing.
    ArgumentError
        A named column does not exist, ``out`` has another suffix, ``batch_rows`` < 1.
    DataError
        The files of a directory have different schemas.

    Examples
    --------
    >>> import fastal.io
    >>> fastal.io.convert("pool.parquet", "pool.arrow")          # doctest: +SKIP
    >>> fastal.top_k("pool.arrow", 1000, "margin")               # doctest: +SKIP
    """
    pool, out = Path(pool), Path(out)
    files = _input_files(pool)
    _check_out(pool, out, force)
    if columns is not None:
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns) \
                or not columns:
            raise ArgumentError(f"columns must be a non-empty list of column names; got "
                                f"{columns!r}")
        columns = list(columns)
    if batch_rows is not None and (isinstance(batch_rows, bool) or not isinstance(batch_rows, int)
                                   or batch_rows < 1):
        raise ArgumentError(f"batch_rows must be a positive integer or None; got {batch_rows!r}")

    readers = [_Reader(f, columns) for f in files]
    schema = readers[0].schema
    for r in readers[1:]:
        if not r.schema.equals(schema, check_metadata=False):
            raise DataError(
                f"files of {pool} must have the same columns and types to be written as one "
                f"file: {readers[0].path} has ({_describe(schema)}), {r.path} has "
                f"({_describe(r.schema)})")

    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    n_rows = n_batches = 0
    try:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            for r in readers:
                for batch in r.batches(batch_rows):
                    # The same columns (checked above); take the first file's field metadata.
                    writer.write_batch(pa.RecordBatch.from_arrays(batch.columns, schema=schema))
                    n_rows += batch.num_rows
                    n_batches += 1
        _fsync(tmp)
        os.replace(tmp, out)
        _fsync(out.parent, directory=True)
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise FileError(f"cannot convert {pool} to {out}: {exc}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return Converted(out, n_rows, len(files), n_batches, schema)


class _Reader:
    """One input file: its (projected) schema and its record batches."""

    def __init__(self, path: str, columns):
        self.path = path
        try:
            with open(path, "rb") as f:
                head = f.read(8)
        except OSError as exc:
            raise FileError(f"cannot open {path}: {exc}") from exc
        try:
            if head[:4] == _PARQUET_MAGIC:
                self.kind = "parquet"
                self.file = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
                schema = self.file.schema_arrow
            elif head[:6] == _IPC_FILE_MAGIC or head[:4] == _IPC_STREAM_MAGIC:
                self.kind = "ipc"
                self.file = None
                schema = self._open_ipc().schema
            else:
                raise FileError(f"{path} is neither a Parquet file nor an Arrow IPC file "
                                f"(first bytes {head!r})")
        except FileError:
            raise
        except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
            kind = "a Parquet" if head[:4] == _PARQUET_MAGIC else "an Arrow IPC"
            raise FileError(f"cannot read {path} as {kind} file: {exc}") from exc
        if columns is None:
            columns = schema.names
        for c in columns:
            if c not in schema.names:
                raise DataError(f"column {c!r} not found in {path}; columns are: "
                                f"{_describe(schema)}")
        self.columns = list(columns)
        self.schema = pa.schema([schema.field(c) for c in self.columns], metadata=schema.metadata)

    def _open_ipc(self):
        source = pa.memory_map(self.path, "r")
        with open(self.path, "rb") as f:
            is_file = f.read(6) == _IPC_FILE_MAGIC
        return pa.ipc.open_file(source) if is_file else pa.ipc.open_stream(source)

    def batches(self, batch_rows):
        try:
            if self.kind == "parquet":
                if batch_rows is None:
                    batch_rows = _default_batch_rows(self.file.metadata, self.columns)
                yield from self.file.iter_batches(batch_size=batch_rows, columns=self.columns,
                                                  use_threads=False)
                return
            reader = self._open_ipc()
            if isinstance(reader, pa.ipc.RecordBatchFileReader):
                parts = (reader.get_batch(i) for i in range(reader.num_record_batches))
            else:
                parts = iter(reader)
            for batch in parts:
                batch = batch.select(self.columns)
                step = batch_rows or batch.num_rows or 1
                for lo in range(0, batch.num_rows, step):
                    yield batch.slice(lo, step)
        except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
            raise FileError(f"cannot read {self.path}: {exc}") from exc


def _default_batch_rows(meta, columns) -> int:
    """Rows holding about CONVERT_BATCH_BYTES of the columns (uncompressed, from the footer)."""
    wanted = set(columns)
    total = 0
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        total += sum(rg.column(j).total_uncompressed_size for j in range(rg.num_columns)
                     if rg.column(j).path_in_schema.split(".", 1)[0] in wanted)
    per_row = max(1, total // max(1, meta.num_rows))
    return int(max(1024, CONVERT_BATCH_BYTES // per_row))


def _input_files(pool: Path) -> list[str]:
    if not pool.exists():
        raise FileError(f"pool path does not exist: {pool}")
    if pool.is_dir():
        return pool_files(pool)
    return [str(pool)]


def _check_out(pool: Path, out: Path, force: bool):
    if not out.name.lower().endswith(IPC_SUFFIXES):
        raise ArgumentError(f"out must be an Arrow IPC file ending in .arrow, .feather or .ipc; "
                            f"got {str(out)!r}")
    if out.is_dir():
        raise FileError(f"out {out} is a directory; name the Arrow file to write")
    if not out.parent.is_dir():
        raise FileError(f"the folder of out does not exist: {out.parent}")
    resolved, source = out.resolve(), pool.resolve()
    if resolved == source or (pool.is_dir() and source in resolved.parents):
        raise FileError(f"out {out} would be inside the pool {pool} it is read from; write it "
                        f"elsewhere")
    if out.exists() and not force:
        raise FileError(f"{out} exists; pass force=True (--force) to replace it")


def _fsync(path: Path, directory: bool = False):
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _describe(schema: pa.Schema) -> str:
    return ", ".join(f"{f.name}: {f.type}" for f in schema)
