"""Shared helpers of the benchmark scripts: timing, a bandwidth probe, peak RSS, tables."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time

import numpy as np
from numba import njit, prange

HERE = os.path.dirname(os.path.abspath(__file__))


def best_of(fn, repeat=3, warmup=1):
    """Smallest wall time of ``repeat`` calls after ``warmup`` calls (noise only adds time)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


@njit(parallel=True, cache=True, fastmath=True)  # fastmath: a vectorised (reassociated) sum
def _parallel_read(a):
    total = 0.0
    for i in prange(a.shape[0]):
        total += a[i]
    return total


def read_bandwidth(gib=2.0, repeat=5):
    """Measured streaming-read bandwidth in bytes/s: a parallel sum over a large float32 array.

    Uses every Numba thread, like the kernels it is compared with. The array is much larger
    than the last-level cache, so this is DRAM bandwidth.
    """
    a = np.ones(int(gib * (1 << 30)) // 4, dtype=np.float32)
    seconds = best_of(lambda: _parallel_read(a), repeat=repeat)
    return a.nbytes / seconds


def machine():
    import numba

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, numba threads {numba.get_num_threads()}, "
            f"Python {platform.python_version()}, NumPy {np.__version__}, Numba {numba.__version__}")


def peak_rss_of(code: str, env=None) -> dict:
    """Run ``code`` in a fresh interpreter; it must print 'BASE <bytes>' after its set-up.

    Returns ``{"base": rss_before, "peak": VmHWM, "added": peak - base, "stdout": ...}``.
    """
    wrapper = (
        "def _rss(field):\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith(field + ':'):\n"
        "            return int(line.split()[1]) * 1024\n"
        + code
        + "\nprint('PEAK', _rss('VmHWM'))\n"
    )
    out = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True,
                         check=True, env=env).stdout
    base = peak = None
    for line in out.splitlines():
        if line.startswith("BASE "):
            base = int(line.split()[1])
        if line.startswith("PEAK "):
            peak = int(line.split()[1])
    return {"base": base, "peak": peak, "added": peak - base, "stdout": out}


def table(headers, rows) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


def fmt_rate(rows_per_s):
    return f"{rows_per_s / 1e6:,.1f} M"
