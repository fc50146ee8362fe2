"""Running one function per partition on the workers, and getting the results back."""

from __future__ import annotations

import sys

from .._errors import ArgumentError, DataError
from ._pool import DistributedPool, Partition, as_pool
from ._workers import check_client, setup_workers, thread_plan


def prepare(client, data, *, column=None, id_column=None, partition_rows=None, layout="rows",
            what="data") -> tuple:
    """Check the client, register the worker plugin, open the pool: ``(pool, plan)``."""
    check_client(client)
    setup_workers(client)
    plan = thread_plan(client)
    n_workers = sum(procs for _, procs in plan.values())
    pool = as_pool(data, column=column, id_column=id_column, partition_rows=partition_rows,
                   layout=layout, n_workers=n_workers, what=what)
    if not pool.partitions or pool.n_rows == 0:
        raise DataError(f"{what} is empty: the pool has no rows")
    return pool, plan


def map_partitions(client, fn, pools, *args, per_partition=None):
    """Submit ``fn(partition, data_0, data_1, ..., *args, *per_partition[i])`` for every
    partition ``i`` of ``pools[0]`` (``data_j``: pool j's lazy partition, None for files,
    which the task reads itself). Returns the futures in partition order.

    Lazy partitions (dask collections) become part of the task's graph, so a partition is
    computed where its task runs and released when the task is done; a worker lost mid-job
    makes the scheduler recompute exactly the partitions it held.
    """
    import dask

    first = pools[0]
    futures = [None] * first.n_partitions
    lazy, lazy_index = [], []
    for i, part in enumerate(first.partitions):
        datas = [p.part(i) for p in pools]
        more = () if per_partition is None else tuple(per_partition[i])
        if any(d is not None for d in datas):
            lazy.append(dask.delayed(fn, pure=False)(part, *datas, *args, *more))
            lazy_index.append(i)
        else:
            futures[i] = client.submit(fn, part, *datas, *args, *more, pure=False)
    if lazy:
        for i, fut in zip(lazy_index, client.compute(lazy)):
            futures[i] = fut
    return futures


def gather(client, futures, progress=False, desc="partitions"):
    """The results of ``futures`` in order; a progress bar (partitions done) on request."""
    if progress:
        from distributed import as_completed
        from tqdm.auto import tqdm

        with tqdm(total=len(futures), unit="partition", desc=desc, file=sys.stderr,
                  leave=False) as bar:
            for _ in as_completed(futures):
                bar.update(1)
    return client.gather(futures)


def ensure_lengths(client, pool: DistributedPool) -> DistributedPool:
    """``pool`` with its partition lengths known: one counting pass for a dask dataframe
    (its partition lengths are in no metadata), nothing otherwise."""
    if pool.n_rows is None:
        lengths = gather(client, map_partitions(client, _count_rows, [pool], pool.spec))
        pool = pool.with_lengths(lengths)
    pool = pool.without_empty()
    if pool.n_rows == 0 or not pool.partitions:
        raise DataError(f"{pool.name} is empty: the pool has no rows")
    return pool


def _count_rows(part: Partition, data, spec):
    return 0 if data is None else len(data)


def scatter_small(client, obj):
    """Send a shared argument (a model, labeled rows) to the workers once, not per task."""
    if obj is None:
        return None
    return client.scatter(obj, broadcast=True, hash=False)
