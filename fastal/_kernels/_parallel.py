"""Run a serial kernel over ranges of tasks on Python threads (Numba's thread count of them).

Why not ``prange``: Numba's parallel lowering makes a kernel 2-4x slower to compile (a
first call in a fresh process took 24-38 s for the margin kernel under load, 6 s with this
runner), and the kernels here are already split into independent tasks (blocks of rows,
each with its own scratch buffers). So each kernel is a serial ``@njit(nogil=True)``
function ``kernel(*args, lo, hi)`` that processes tasks ``lo <= task < hi`` and returns an
int (e.g. the number of invalid rows), and :func:`run_tasks` splits ``range(n_tasks)`` into
one contiguous range per thread. With the GIL released, the threads run in parallel.

Results cannot depend on the thread count: every row is computed by the same code whatever
range it falls in, and the returned counts are summed. The thread count is Numba's
(``NUMBA_NUM_THREADS``, ``numba.set_num_threads``), so one setting controls every kernel.

Kernels whose threads must meet many times in one call (a greedy's picks) run as a gang
(:func:`run_gang`: one task per thread, all running at once) and meet at :func:`barrier`,
a spin barrier, instead of a return to Python per step.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numba
from numba import njit

from ._intrinsics import atomic_add, atomic_load, yield_cpu
from ._math import HELPER

_lock = threading.Lock()
_pool = None
_pool_pid = None


def _executor() -> ThreadPoolExecutor:
    """One pool per process (a pool inherited through fork has no threads: make a new one)."""
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max(1, numba.config.NUMBA_NUM_THREADS - 1),
                                       thread_name_prefix="fastal-kernel")
            _pool_pid = os.getpid()
        return _pool


def run_tasks(kernel, n_tasks: int, *args, scratch=None) -> int:
    """``sum(kernel(*args, lo, hi))`` over a split of ``range(n_tasks)`` into thread ranges.

    The calling thread runs the first range itself, so one thread costs no hand-off.

    ``scratch``: ``(key, make)``, the kernel's scratch arrays made by the driver rather
    than inside the kernel (``np.empty`` and ``ndarray.view`` in a kernel cost 0.2-0.6 s of
    typing and compilation in a fresh process, a fifth of a first call). Each thread range
    then runs ``kernel(*args, *make(), lo, hi)`` with arrays of its own, kept per calling
    thread under ``key`` (which must name everything ``make`` depends on: shapes, dtypes)
    and reused by its later calls, so a small chunk pays no allocation.
    """
    n_tasks = int(n_tasks)
    threads = min(numba.get_num_threads(), n_tasks)
    if threads <= 1:
        return kernel(*args, *_scratch(scratch, 0), 0, n_tasks)
    cuts = [n_tasks * t // threads for t in range(threads + 1)]
    pool = _executor()
    futures = [pool.submit(kernel, *args, *_scratch(scratch, t), cuts[t], cuts[t + 1])
               for t in range(1, threads)]
    try:
        total = kernel(*args, *_scratch(scratch, 0), cuts[0], cuts[1])
    finally:
        wait(futures)  # the scratch is reused by this thread's next call: never in flight
    for future in futures:
        total += future.result()
    return total


_gang_lock = threading.Lock()


def _after_fork_in_child():
    """A lock some other thread held at fork stays held forever in the child: new ones."""
    global _lock, _gang_lock
    _lock = threading.Lock()
    _gang_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def run_gang(kernel, n_threads: int, *args, scratch=None) -> int:
    """``run_tasks`` with one task per thread, for kernels whose threads wait for each other
    (barriers): every range must be running at once. One gang at a time per process: the
    pool's threads finish whatever else they run, so a gang's threads all start; two gangs
    could each hold a pool thread while waiting for one queued behind the other."""
    if not 1 <= n_threads <= numba.get_num_threads():  # else ranges would merge: a deadlock
        raise ValueError(f"a gang of {n_threads} threads needs 1 to "
                         f"numba.get_num_threads() = {numba.get_num_threads()}")
    with _gang_lock:
        return run_tasks(kernel, n_threads, *args, scratch=scratch)


@njit(nogil=True, **HELPER)
def barrier(sync, n_threads, generation):
    """Wait (spinning) until all ``n_threads`` threads of a gang have reached barrier number
    ``generation`` (1, 2, ... in every thread): ``sync[0]`` (int64) counts the arrivals.
    The writes a thread made before its arrival are visible to every thread after it."""
    if n_threads == 1:
        return
    atomic_add(sync, 0)
    target = generation * n_threads
    spins = 0
    while atomic_load(sync, 0) < target:
        spins += 1
        if spins == 4096:  # more threads than cores: let the others run
            yield_cpu()
            spins = 0


_local = threading.local()
# The scratch sets kept per calling thread: a few KB each for one model's scores, up to a
# few MB for a large committee's. Past this many bytes the thread's sets are dropped; a set
# larger than this alone (k-center's per-group scratch on a large pool) is never kept.
_SCRATCH_BYTES = 32 << 20


def _scratch(scratch, slot: int) -> tuple:
    """Thread range ``slot``'s scratch arrays of the calling thread (see ``run_tasks``)."""
    if scratch is None:
        return ()
    key, make = scratch
    cache = getattr(_local, "scratch", None)
    if cache is None:
        cache = _local.scratch = {}
    arrays = cache.get((key, slot))
    if arrays is None:
        arrays = tuple(make())
        size = sum(a.nbytes for a in arrays if a is not None)  # None: an unused slot
        if size > _SCRATCH_BYTES:  # not kept: freed when the call ends
            return arrays
        held = sum(a.nbytes for kept in cache.values() for a in kept if a is not None)
        if held + size > _SCRATCH_BYTES:
            cache.clear()
        cache[(key, slot)] = arrays
    return arrays
