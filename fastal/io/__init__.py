"""Where rows come from: arrays, Arrow tables, IPC/Parquet files and directories.

Every source is read through one interface, ``Source.chunks(chunk_rows)``, which yields
consecutive ``Chunk`` objects keyed by global row position.
"""

from __future__ import annotations

import os
from pathlib import Path

from .._errors import ArgumentError, FileError
from ._base import Chunk, Source, check_chunk_rows, compute_dtype
from .arrays import ArraySource, to_numpy
from .arrow import TableSource, directory_source, file_source
from .convert import Converted, convert

__all__ = ["Chunk", "Converted", "Source", "as_source", "check_chunk_rows", "compute_dtype",
           "convert", "is_table_or_path", "to_numpy"]


def is_table_or_path(data) -> bool:
    """True for what ``as_source`` reads through Arrow: tables, batches, paths."""
    import pyarrow as pa

    return isinstance(data, (str, os.PathLike, pa.Table, pa.RecordBatch, Source))


def as_source(data, *, column=None, id_column=None, what: str = "data") -> Source:
    """Turn what the user passed into a ``Source``.

    Parameters
    ----------
    data : array-like, pyarrow.Table, pyarrow.RecordBatch, str or os.PathLike
        A 2-D array (NumPy, or anything with ``__dlpack__``/``__array__``), an Arrow
        table, or the path of a Parquet file, an Arrow IPC file or a directory of them.
    column : str or list of str, optional
        For Arrow data: the list column holding one vector per row, or one column per class.
        By default the only list column is used.
    id_column : str, optional
        For Arrow data: an integer or string column identifying each row.
    """
    if isinstance(data, Source):
        return data
    if column is not None and not isinstance(column, (str, list, tuple)):
        raise ArgumentError(f"column must be a name or a list of names; got {column!r}")
    if isinstance(column, (list, tuple)) and len(set(map(str, column))) != len(column):
        raise ArgumentError(f"column must name distinct columns; got {list(column)!r}")
    if id_column is not None and not isinstance(id_column, str):
        raise ArgumentError(f"id_column must be a column name; got {id_column!r}")
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.exists():
            raise FileError(f"{what} path does not exist: {path}")
        try:
            if path.is_dir():
                return directory_source(path, column, id_column)
            return file_source(path, column, id_column)
        except UnicodeDecodeError as exc:  # a column name in the file's schema is not UTF-8
            raise FileError(f"cannot read {path}: a column name is not UTF-8 (a corrupt "
                            f"file?): {exc}") from exc
    import pyarrow as pa

    if isinstance(data, (pa.Table, pa.RecordBatch)):
        return TableSource(data, column, id_column)
    if column is not None or id_column is not None:
        raise ArgumentError(
            f"column/id_column apply to Arrow tables and files; {what} is a "
            f"{type(data).__name__}, pass the 2-D array itself"
        )
    return ArraySource(data, what)
