"""Distributed pools: where each partition's rows come from, and where they sit in the pool.

A :class:`DistributedPool` is a list of :class:`Partition` descriptions (small, sent to the
workers) plus, for Dask collections, the lazy partitions themselves. The driver never reads
rows: a file pool's row counts come from the files' metadata (Parquet footers, Arrow IPC
batch headers), a dask array's from its chunks; each partition is read on the worker that
processes it, through the same ``fastal.io`` sources as on one machine, with its chunks
keyed by *global* row position (the partition's offset added), so every merge can apply
the single-machine tie rule: the lower global row wins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .._errors import ArgumentError, DataError, FileError
from ..io import Chunk, Source, as_source
from ..io.arrays import ArraySource
from ..io.arrow import ConcatSource, ParquetSource, TableSource, file_source


@dataclass(frozen=True)
class Partition:
    """One partition of a distributed pool.

    Attributes
    ----------
    index : int
        Position of the partition in the pool (partitions are in row order).
    offset : int
        Global position of its first row; -1 while unknown (a dask dataframe).
    n_rows : int
        Its number of rows; -1 while unknown.
    path : str or None
        The file it is read from (file pools).
    row_groups : tuple of int or None
        For a Parquet file split into several partitions: its row groups in this one.
    """

    index: int
    offset: int = -1
    n_rows: int = -1
    path: str | None = None
    row_groups: tuple | None = None


@dataclass(frozen=True)
class ReadSpec:
    """How a worker turns a partition into rows: columns, id column, dtype, layout."""

    column: object = None
    id_column: str | None = None
    dtype: str | None = None     # cast to (a directory of float32 and float64 files: float64)
    name: str = "data"
    layout: str = "rows"         # "rows" (rows, width) or "members" (a committee's layout)


@dataclass
class DistributedPool:
    """A pool split into partitions that workers read themselves.

    Build one with :func:`fastal.distributed.pool`. ``kind`` is ``"files"``, ``"array"``
    or ``"dataframe"``; ``n_rows`` is None until the partition lengths are known.
    """

    kind: str
    partitions: list
    spec: ReadSpec
    parts: list | None = None     # lazy partitions (dask Delayed) of a collection
    width: int | None = None
    has_ids: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def n_rows(self):
        if any(p.n_rows < 0 for p in self.partitions):
            return None
        return int(sum(p.n_rows for p in self.partitions))

    @property
    def n_partitions(self) -> int:
        return len(self.partitions)

    @property
    def name(self) -> str:
        return self.spec.name

    def offsets(self) -> np.ndarray:
        """Global position of each partition's first row, plus the total at the end."""
        out = np.zeros(self.n_partitions + 1, dtype=np.int64)
        np.cumsum([p.n_rows for p in self.partitions], out=out[1:])
        return out

    def with_lengths(self, lengths) -> "DistributedPool":
        """The same pool with partition lengths (and offsets) filled in."""
        lengths = [int(n) for n in lengths]
        for p, n in zip(self.partitions, lengths):
            if p.n_rows >= 0 and p.n_rows != n:
                raise DataError(f"partition {p.index} of {self.name} has {n} rows but its "
                                f"metadata says {p.n_rows}: the data changed during the job")
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        parts = [replace(p, n_rows=n, offset=int(o))
                 for p, n, o in zip(self.partitions, lengths, offsets[:-1])]
        return replace(self, partitions=parts)

    def without_empty(self) -> "DistributedPool":
        """The same pool without its empty partitions (lengths must be known)."""
        keep = [i for i, p in enumerate(self.partitions) if p.n_rows != 0]
        if len(keep) == self.n_partitions:
            return self
        parts = None if self.parts is None else [self.parts[i] for i in keep]
        partitions = [replace(self.partitions[i], index=j) for j, i in enumerate(keep)]
        return replace(self, partitions=partitions, parts=parts)

    def part(self, i):
        """What a task needs besides the Partition: the lazy partition, or None (files)."""
        return None if self.parts is None else self.parts[i]

    def __repr__(self):
        rows = "unknown" if self.n_rows is None else f"{self.n_rows:,}"
        return (f"DistributedPool({self.kind}, {self.n_partitions} partitions, {rows} rows, "
                f"name={self.name!r})")


# --------------------------------------------------------------------------- building


def _is_dask_array(data) -> bool:
    try:
        import dask.array as da
    except ImportError:  # pragma: no cover
        return False
    return isinstance(data, da.Array)


def _is_dask_dataframe(data) -> bool:
    try:
        import dask.dataframe as dd
    except ImportError:
        return False
    return isinstance(data, dd.DataFrame)


def is_distributed_data(data) -> bool:
    """True for what only the distributed path reads: pools, dask collections."""
    if isinstance(data, DistributedPool) or _is_dask_array(data) or _is_dask_dataframe(data):
        return True
    return isinstance(data, (list, tuple)) and bool(data) and all(
        _is_dask_array(a) for a in data)


def as_pool(data, *, column=None, id_column=None, partition_rows=None, layout="rows",
            n_workers=1, what="data") -> DistributedPool:
    """Turn ``data`` into a :class:`DistributedPool` (see :func:`fastal.distributed.pool`)."""
    if isinstance(data, DistributedPool):
        if column is not None or id_column is not None:
            if (column, id_column) != (data.spec.column, data.spec.id_column):
                raise ArgumentError(f"column/id_column were given twice: {what} is a "
                                    f"DistributedPool built with column={data.spec.column!r}, "
                                    f"id_column={data.spec.id_column!r}")
        return data
    if partition_rows is not None:
        from .._validation import check_int

        partition_rows = check_int(partition_rows, "partition_rows", 1)
    if isinstance(data, (str, os.PathLike)) or (
            isinstance(data, (list, tuple)) and data
            and all(isinstance(p, (str, os.PathLike)) for p in data)):
        return _file_pool(data, column, id_column, partition_rows, what)
    if _is_dask_dataframe(data):
        return _dataframe_pool(data, column, id_column, what)
    if column is not None or id_column is not None:
        raise ArgumentError(f"column/id_column apply to files and dask dataframes; {what} is "
                            f"a {type(data).__name__}")
    if _is_dask_array(data) or (isinstance(data, (list, tuple)) and data
                                and all(_is_dask_array(a) for a in data)):
        return _array_pool(data, layout, what)
    import pyarrow as pa

    if isinstance(data, (pa.Table, pa.RecordBatch)):
        raise ArgumentError(f"{what} is an in-memory Arrow table: with client=, pass the "
                            f"files it came from (the workers read them), or a dask "
                            f"collection")
    return _array_pool(_from_memory(data, layout, partition_rows, n_workers, what), layout,
                       what)


def _from_memory(data, layout, partition_rows, n_workers, what):
    """Split in-memory arrays into a dask array (the rows are sent to the workers once)."""
    import dask.array as da

    from ..io import to_numpy

    members = isinstance(data, (list, tuple))
    arrays = [to_numpy(a, what) for a in data] if members else [to_numpy(data, what)]
    if not arrays or arrays[0].ndim == 0:
        raise DataError(f"{what} must be an array with one row per pool example; got a scalar")
    axis = 1 if (layout == "members" and not members and arrays[0].ndim >= 2) else 0
    n = arrays[0].shape[axis]
    rows = partition_rows or max(1, -(-n // max(2, 2 * n_workers)))
    out = []
    for a in arrays:
        chunks = tuple(rows if ax == axis else -1 for ax in range(a.ndim))
        out.append(da.from_array(a, chunks=chunks))
    return out if members else out[0]


def _file_pool(data, column, id_column, partition_rows, what):
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.exists():
            raise FileError(f"{what} path does not exist: {path}")
        source = as_source(data, column=column, id_column=id_column, what=what)
        sources = source.sources if isinstance(source, ConcatSource) else [source]
        name = str(path)
    else:
        sources = [file_source(p, column, id_column) for p in data]
        name = f"{len(sources)} files" if len(sources) > 1 else str(data[0])
        if len(sources) > 1:
            ConcatSource(sources, name)  # the same agreement checks as a directory
    dtypes = {s.dtype for s in sources}
    dtype = dtypes.pop() if len(dtypes) == 1 else np.dtype(np.float64)
    partitions = []
    offset = 0
    for s in sources:
        if s.n_rows == 0:  # an empty file holds no rows of the pool: no partition
            continue
        groups = _row_group_split(s, partition_rows)
        for rg, n in groups:
            partitions.append(Partition(len(partitions), offset, n, path=_path_of(s),
                                        row_groups=rg))
            offset += n
    spec = ReadSpec(column=column, id_column=id_column, dtype=dtype.str, name=name)
    return DistributedPool("files", partitions, spec, width=sources[0].width,
                           has_ids=sources[0].has_ids)


def _path_of(source) -> str:
    return str(getattr(source, "path", source.name))


def _row_group_split(source, partition_rows):
    """``[(row_groups or None, rows)]``: one partition per file, or runs of whole Parquet
    row groups of about ``partition_rows`` rows (from the footer, no data read)."""
    if partition_rows is None or not isinstance(source, ParquetSource) \
            or source.n_rows <= partition_rows:
        return [(None, source.n_rows)]
    meta = source.file.metadata
    out, run, rows = [], [], 0
    for g in range(meta.num_row_groups):
        run.append(g)
        rows += meta.row_group(g).num_rows
        if rows >= partition_rows:
            out.append((tuple(run), rows))
            run, rows = [], 0
    if run:
        out.append((tuple(run), rows))
    return out


def _dataframe_pool(ddf, column, id_column, what):
    names = None
    if column is not None:
        names = [column] if isinstance(column, str) else list(column)
        if id_column is not None:
            names.append(id_column)
        missing = [c for c in names if c not in ddf.columns]
        if missing:
            raise DataError(f"column {missing[0]!r} not found in the dask dataframe "
                            f"{what}; columns are: {', '.join(map(str, ddf.columns))}")
        ddf = ddf[names]
    elif id_column is not None and id_column not in ddf.columns:
        raise DataError(f"id_column {id_column!r} not found in the dask dataframe {what}; "
                        f"columns are: {', '.join(map(str, ddf.columns))}")
    parts = list(ddf.to_delayed())
    partitions = [Partition(i) for i in range(len(parts))]
    spec = ReadSpec(column=column, id_column=id_column, name=f"dask dataframe {what}")
    return DistributedPool("dataframe", partitions, spec, parts=parts,
                           has_ids=id_column is not None)


def _array_pool(data, layout, what):
    members = isinstance(data, (list, tuple))
    arrays = list(data) if members else [data]
    first = arrays[0]
    if layout == "members" and not members:
        if first.ndim not in (2, 3):
            raise DataError(f"{what} must be a (members, rows, classes) or (members, rows) "
                            f"dask array for a committee method; got {first.ndim} dimensions")
        axis = 1
    else:
        if first.ndim != 2:
            raise DataError(f"{what} must be 2-D (rows, columns); got a dask array of shape "
                            f"{first.shape}")
        axis = 0
    if any(np.isnan(c) for c in first.chunks[axis]):
        raise DataError(f"{what} has unknown chunk sizes along its rows; call "
                        f"compute_chunk_sizes() on it first")
    row_chunks = tuple(int(c) for c in first.chunks[axis])
    rechunked = []
    for m, a in enumerate(arrays):
        if a.ndim != first.ndim or a.shape[axis] != first.shape[axis]:
            raise DataError(f"{what}[{m}] has shape {a.shape} but {what}[0] has {first.shape}; "
                            f"every member must have the same rows")
        chunks = {ax: (row_chunks if ax == axis else -1) for ax in range(a.ndim)}
        rechunked.append(a.rechunk(chunks))
    blocks = [np.asarray(a.to_delayed()).reshape(-1) for a in rechunked]
    if members:
        import dask

        parts = [dask.delayed(list)([b[i] for b in blocks]) for i in range(len(row_chunks))]
    else:
        parts = list(blocks[0])
    offsets = np.concatenate([[0], np.cumsum(row_chunks)])
    keep = [i for i, n in enumerate(row_chunks) if n > 0]  # empty chunks hold no rows
    parts = [parts[i] for i in keep]
    partitions = [Partition(j, int(offsets[i]), row_chunks[i]) for j, i in enumerate(keep)]
    spec = ReadSpec(name=f"dask array {what}", layout="members" if axis == 1 or members
                    else "rows")
    width = int(first.shape[1]) if axis == 0 else None
    return DistributedPool("array", partitions, spec, parts=parts, width=width)


def aligned(other, pool: DistributedPool, *, what="probs") -> DistributedPool:
    """A second pool with ``pool``'s partitions: a column of the same files or dataframe
    (``other`` a column name), or an array (dask or in-memory) split like ``pool``."""
    if isinstance(other, str):
        if pool.kind == "array":
            raise ArgumentError(f"{what}={other!r} names a column, but the pool is a dask "
                                f"array: pass {what} as an array with the same rows")
        return replace(pool, spec=replace(pool.spec, column=other, id_column=None, dtype=None),
                       has_ids=False, width=None)
    n_rows = pool.n_rows
    if n_rows is None:
        raise ArgumentError("the pool's partition lengths are needed to align "
                            f"{what} with it (internal: lengths not computed)")
    lengths = tuple(p.n_rows for p in pool.partitions)
    if isinstance(other, DistributedPool):
        if other.n_rows is not None and [p.n_rows for p in other.partitions] == list(lengths):
            return other
        raise ArgumentError(f"{what} is a DistributedPool whose partitions differ from the "
                            f"pool's; pass an array or a column name instead")
    import dask.array as da

    if not _is_dask_array(other):
        from ..io import to_numpy

        arr = to_numpy(other, what)
        if arr.ndim != 2:
            raise DataError(f"{what} must be 2-D (rows, classes); got shape {arr.shape}")
        if arr.shape[0] != n_rows:
            raise DataError(f"{what} has {arr.shape[0]} rows but data has {n_rows}; they "
                            f"must describe the same pool")
        other = da.from_array(arr, chunks=(lengths, -1))
    if other.ndim != 2:
        raise DataError(f"{what} must be 2-D (rows, classes); got a dask array of shape "
                        f"{other.shape}")
    if other.shape[0] != n_rows:
        raise DataError(f"{what} has {other.shape[0]} rows but data has {n_rows}; they must "
                        f"describe the same pool")
    out = _array_pool(other.rechunk({0: lengths, 1: -1}), "rows", what)
    return replace(out, spec=replace(out.spec, name=what))


# --------------------------------------------------------------------------- on the worker


class _ParquetRowGroups(ParquetSource):
    """Some row groups of a Parquet file (one partition of a file split by row groups).

    Read sequentially on the task's thread (``readahead=0``): a worker already runs one
    task per thread, so decoding ahead on more threads would oversubscribe its cores.
    """

    def __init__(self, path, column, id_column, row_groups):
        super().__init__(path, column, id_column, row_groups=row_groups, readahead=0)


class PartitionSource(Source):
    """A partition's rows with chunk starts in *global* positions (offset added) and values
    in the pool's dtype (what a single-machine scan of the whole pool would give)."""

    def __init__(self, inner: Source, offset: int, dtype, name: str):
        self.inner = inner
        self.offset = max(0, int(offset))
        self.n_rows = inner.n_rows
        self.width = inner.width
        self.has_ids = inner.has_ids
        self.n_members = inner.n_members
        self.dtype = np.dtype(dtype) if dtype is not None else inner.dtype
        self.name = name

    def default_chunk_rows(self) -> int:
        return self.inner.default_chunk_rows()

    def chunks(self, chunk_rows=None):
        for chunk in self.inner.chunks(chunk_rows):
            yield Chunk(chunk.start + self.offset, chunk.values.astype(self.dtype, copy=False),
                        chunk.ids)

    def read_all(self, chunk_rows=None):
        out = np.empty((self.n_rows, self.width), dtype=self.dtype)
        ids = [] if self.has_ids else None
        for chunk in self.chunks(chunk_rows):
            out[chunk.start - self.offset:chunk.stop - self.offset] = chunk.values
            if ids is not None:
                ids.append(chunk.ids)
        self.ids = None if ids is None else (np.concatenate(ids) if ids else np.empty(0))
        return out


def open_partition(part: Partition, data, spec: ReadSpec):
    """On a worker: the partition as a ``PartitionSource`` (global chunk starts), or, for a
    committee's in-memory layout, the block itself (``(members, rows, ...)`` or a list)."""
    if spec.layout == "members":
        return data
    name = spec.name
    if part.path is not None:
        if part.row_groups is not None:
            inner = _ParquetRowGroups(part.path, spec.column, spec.id_column, part.row_groups)
        else:
            # One task per worker thread already: decode on it, not on more threads.
            inner = file_source(part.path, spec.column, spec.id_column, readahead=0)
        name = part.path
        if part.n_rows >= 0 and inner.n_rows != part.n_rows:
            raise DataError(f"{part.path} has {inner.n_rows} rows but had {part.n_rows} when "
                            f"the pool was opened: the file changed during the job")
    elif hasattr(data, "to_numpy") and hasattr(data, "columns"):  # a pandas DataFrame
        import pyarrow as pa

        table = pa.Table.from_pandas(data, preserve_index=False)
        name = f"partition {part.index} of the {spec.name}"
        inner = TableSource(table, spec.column, spec.id_column, name=name)
    else:
        inner = ArraySource(data, spec.name)
    return PartitionSource(inner, part.offset, spec.dtype, name)


def partition_rows_of(obj) -> int:
    """Rows of what ``open_partition`` returned."""
    if isinstance(obj, Source):
        return obj.n_rows
    if isinstance(obj, (list, tuple)):
        return int(np.asarray(obj[0]).shape[0])
    return int(np.asarray(obj).shape[1])
