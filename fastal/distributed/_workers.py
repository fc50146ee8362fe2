"""Worker hygiene: the client check, the thread budget of each task, kernels warmed once.

Threads. A Dask worker process runs ``nthreads`` tasks at once (plus one actor thread), and
each fastal task runs Numba kernels on its own thread pool. Left alone, every task would
start ``NUMBA_NUM_THREADS`` (= the cores) threads: 2 worker processes x 1 task x 2 Numba
threads on 2 cores is already twice the machine. So each task sets its Numba thread count
(``numba.set_num_threads`` is per calling thread, hence per task, not per process) to

    max(1, cores of the host // Dask threads of all workers on that host)

and an actor call (one actor thread per worker process) to ``cores // worker processes on
the host``. FAISS (OpenMP) gets the same number. ``NUMBA_NUM_THREADS`` in the workers'
environment stays an upper bound. Dask's nanny already sets ``OMP_NUM_THREADS=1`` and the
BLAS variables to 1 for its workers, so GEMMs (``model=``) never add threads of their own.

Compilation. Numba compiles a kernel once per process, on first use; with ``cache=True``
(every fastal kernel) it loads the machine code from the cache beside the package (or
``NUMBA_CACHE_DIR``: point it at a shared directory when the install is read-only). The
worker plugin loads the common kernels when a worker starts, so a task never pays it and a
restarted worker pays it again once, before its first task.
"""

from __future__ import annotations

import os

import numpy as np

from .._errors import ArgumentError

PLUGIN_NAME = "fastal-worker"


def check_client(client):
    """Return ``client`` if it is a running ``dask.distributed.Client``, else raise."""
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - the extra is not installed
        raise ArgumentError(
            "client= needs dask.distributed: pip install 'fastal[distributed]'") from exc
    if not isinstance(client, Client):
        raise ArgumentError(f"client must be a dask.distributed.Client; got "
                            f"{type(client).__name__}")
    if client.status not in ("running", "connecting"):
        raise ArgumentError(f"client must be connected to a scheduler; its status is "
                            f"{client.status!r}")
    return client


def _host(address: str) -> str:
    host = address.split("://", 1)[-1]
    return host.rsplit(":", 1)[0]


def thread_plan(client) -> dict:
    """``{host: (Dask task threads on the host, worker processes on the host)}``.

    Read from the scheduler's worker table (no round trip to the workers).
    """
    plan: dict = {}
    for address, nthreads in worker_table(client).items():
        threads, procs = plan.get(_host(address), (0, 0))
        plan[_host(address)] = (threads + nthreads, procs + 1)
    if not plan:
        raise ArgumentError("client has no workers: start some (or pass --local-workers N)")
    return plan


def _scheduler_workers(dask_scheduler=None):
    return {address: int(ws.nthreads) for address, ws in dask_scheduler.workers.items()}


def worker_table(client) -> dict:
    """``{worker address: threads}``, asked of the scheduler now.

    Not ``client.scheduler_info()``: the client's background refresh of that cached dict
    carries no per-worker entries and can overwrite a fresh one, so its worker table was
    seen empty on a live cluster (a test failed with 2 workers up).
    """
    return client.run_on_scheduler(_scheduler_workers)


def restore_environ(saved: dict) -> None:
    """Put ``os.environ`` back as ``saved`` (after a LocalCluster changed it)."""
    import os

    for key in set(os.environ) - set(saved):
        del os.environ[key]
    os.environ.update(saved)


def live_workers(client, timeout: float = 60.0) -> list:
    """Addresses of the cluster's workers, waiting up to ``timeout`` s for at least one
    (a worker that was just lost is restarted by its nanny)."""
    workers = list(worker_table(client))
    if not workers:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except Exception as exc:  # distributed's and asyncio's TimeoutError
            raise ArgumentError(f"client has no workers after waiting {timeout:.0f} s: start "
                                f"some (or pass --local-workers N)") from exc
        workers = list(worker_table(client))
    if not workers:
        raise ArgumentError("client has no workers: start some (or pass --local-workers N)")
    return workers


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def set_task_threads(plan: dict, actor: bool = False) -> int:
    """Set this thread's Numba (and FAISS) thread count from ``plan``; return it.

    Called at the start of every fastal task and actor call, on the worker.
    """
    import numba

    try:
        from distributed import get_worker

        host = _host(get_worker().address)
    except (ImportError, ValueError):  # run outside a worker (tests, the driver)
        host = None
    threads, procs = plan.get(host, (1, 1)) if plan else (1, 1)
    share = procs if actor else threads
    n = max(1, min(numba.config.NUMBA_NUM_THREADS, cores() // max(1, share)))
    numba.set_num_threads(n)
    try:
        import faiss

        faiss.omp_set_num_threads(n)
    except ImportError:  # pragma: no cover - faiss is a dependency
        pass
    return n


def warm_kernels():
    """Load (or compile) the kernels a distributed job uses first, on tiny inputs."""
    from .. import _config  # noqa: F401  (OpenMP wait policy, before any kernel runs)
    from .._kernels import uncertainty as _ku
    from .._kernels import farthest as _kf

    probs = np.full((2, 2), 0.5, dtype=np.float32)
    out = np.empty(2, dtype=np.float32)
    _ku.uncertainty_scores(probs, _ku.MARGIN, False, 1e-3, out)
    X = np.zeros((2, 2), dtype=np.float32)
    _kf.add_centers(X, np.empty(0), False, np.zeros((1, 2)), np.full(2, np.inf),
                    np.empty(0), False, np.empty(3))


def setup_workers(client):
    """Register fastal's worker plugin (once per client): kernels warmed on every current
    and future worker, so a task never compiles and a restarted worker warms up again."""
    from ._plugin import FastalWorker

    if getattr(client, "_fastal_plugin", False):
        return
    client.register_plugin(FastalWorker(), name=PLUGIN_NAME)
    client._fastal_plugin = True


class connect:
    """A ``Client`` for a scheduler address or a new ``LocalCluster``; closes what it opened.

    ``with connect(scheduler="tcp://host:8786") as client: ...`` or
    ``with connect(local_workers=2) as client: ...`` (N worker processes of 1 thread each:
    Numba then gives each the cores divided by N). With neither, ``client`` is None.
    """

    def __init__(self, scheduler=None, local_workers=None, timeout=30):
        if scheduler is not None and local_workers is not None:
            raise ArgumentError("pass a scheduler address or a number of local workers, not "
                                "both")
        if local_workers is not None:
            from .._validation import check_int

            local_workers = check_int(local_workers, "local_workers", 1)
        if scheduler is not None and (not isinstance(scheduler, str) or "://" not in scheduler):
            raise ArgumentError(f"scheduler must be an address like tcp://host:8786; got "
                                f"{scheduler!r}")
        self.scheduler, self.local_workers, self.timeout = scheduler, local_workers, timeout
        self.client = self.cluster = None

    def __enter__(self):
        if self.scheduler is None and self.local_workers is None:
            return None
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - the extra is not installed
            raise ArgumentError("running on Dask needs the extra: pip install "
                                "'fastal[distributed]'") from exc
        if self.local_workers is not None:
            import logging
            import os

            # Dask's nanny sets OMP_NUM_THREADS=1 (and MKL/OPENBLAS, MALLOC_TRIM_THRESHOLD_)
            # in this process's environment for its workers and never restores it: every
            # later subprocess of the caller would inherit it. Restored on exit.
            self._environ = dict(os.environ)
            self.cluster = LocalCluster(n_workers=self.local_workers, threads_per_worker=1,
                                        processes=True, dashboard_address=":0",
                                        silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        else:
            try:
                self.client = Client(self.scheduler, timeout=self.timeout)
            except (OSError, TimeoutError) as exc:
                raise ArgumentError(f"scheduler {self.scheduler} cannot be reached: "
                                    f"{exc}") from exc
        return self.client

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
            restore_environ(self._environ)
        return False
