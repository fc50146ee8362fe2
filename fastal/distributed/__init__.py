"""fastal on a Dask cluster: the same scores and picks as one machine, over partitions.

Pass ``client=`` (a ``dask.distributed.Client``) to :func:`fastal.score`,
:func:`fastal.top_k` or :func:`fastal.select`, or call the functions here directly. The pool
is a directory or list of Parquet / Arrow IPC files (read by the workers), a
``dask.dataframe``, a ``dask.array`` (or in-memory arrays, split and sent once), or a
:class:`DistributedPool` from :func:`pool`.

What makes the answer identical to one machine: each partition is scored by the
single-machine driver and kernels on its worker, with chunks keyed by global row position;
the driver merges with the single-machine tie rule (the lower global row wins); exact greedy
k-center and BADGE keep each partition's state resident on a worker and take one global
decision per pick. See ``README.md`` ("Running on a cluster") and ``bench/README.md``.

Needs the optional extra: ``pip install 'fastal[distributed]'``.
"""

from ._kcenter import kcenter
from ._pool import DistributedPool, Partition
from ._scoring import score, top_k
from ._select import DISTRIBUTED_STRATEGIES, select
from ._workers import connect, setup_workers

__all__ = ["DISTRIBUTED_STRATEGIES", "DistributedPool", "Partition", "connect", "kcenter",
           "pool", "score", "select", "setup_workers", "top_k"]


def pool(data, *, column=None, id_column=None, partition_rows=None):
    """Describe a distributed pool without reading its rows.

    Parameters
    ----------
    data : path, list of paths, dask.dataframe.DataFrame or dask.array.Array
        A Parquet / Arrow IPC file or a directory of them (read in sorted path order, as on
        one machine), a list of such files (in the given order), a dask dataframe (one
        list<float> column, or one float column per class), or a dask array (rows,
        columns).
    column, id_column : optional
        As in :func:`fastal.top_k`.
    partition_rows : int, optional
        Split Parquet files into partitions of whole row groups of about this many rows
        (default: one partition per file).

    Returns
    -------
    DistributedPool
        Partitions with their global offsets (from the files' metadata or the array's
        chunks; a dask dataframe's lengths are counted when a job first needs them).
    """
    from ._pool import as_pool

    return as_pool(data, column=column, id_column=id_column, partition_rows=partition_rows)
