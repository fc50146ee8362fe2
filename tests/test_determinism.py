"""Same picks on any machine: the determinism matrix.

Every selection path (``determinism_cases.cases``: top_k of every method from probabilities,
logits, member outputs, a linear head and a committee of heads; every strategy of
``fastal.select`` with and without labels; k-center l2 and cosine) must give bit-identical
indices and scores whatever the chunk size, the Numba thread count, the BLAS/OpenMP thread
count, the input format (NumPy, Arrow IPC, Parquet, a directory of both), and, in
subprocesses, the OpenBLAS kernels (``OPENBLAS_CORETYPE``). The kernels are written for it:
fixed accumulation orders, no contraction, explicit FMA, exact float64 rechecks of picks.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numba
import pytest
from threadpoolctl import threadpool_limits

import determinism_cases as dc

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def base():
    return dc.cases("numpy")


def _diff(a, b):
    return sorted(k for k in a if a[k] != b.get(k))


def test_matrix_in_process(base, tmp_path, capsys):
    variants = []
    for chunk_rows in (1, 7, 4096, dc.N):
        variants.append((f"chunk_rows={chunk_rows}", dict(chunk_rows=chunk_rows)))
    for fmt in dc.FORMATS[1:]:
        variants.append((f"format={fmt}", dict(fmt=fmt)))
    variants.append(("format=dataset,chunk_rows=7", dict(fmt="dataset", chunk_rows=7)))
    failures = {}
    runs = 0
    for numba_threads in (1, 2):
        for blas_threads in (1, 2):
            numba.set_num_threads(min(numba_threads, numba.config.NUMBA_NUM_THREADS))
            try:
                with threadpool_limits(limits=blas_threads):
                    todo = variants if (numba_threads, blas_threads) == (2, 2) else variants[:1]
                    todo = todo + [("default", {})]
                    for name, kw in todo:
                        sub = tmp_path / f"{numba_threads}-{blas_threads}-{runs}"
                        sub.mkdir()
                        got = dc.cases(kw.get("fmt", "numpy"), kw.get("chunk_rows"), sub)
                        runs += 1
                        bad = _diff(base, got)
                        if bad:
                            failures[f"numba={numba_threads} blas={blas_threads} {name}"] = bad
            finally:
                numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    with capsys.disabled():
        print(f"\ndeterminism matrix (in process): {runs} configurations x {len(base)} cases "
              f"= {runs * len(base)} comparisons")
    assert not failures, failures


def _supported_core_types():
    """OpenBLAS core types this CPU can run (a kernel needing a missing ISA would crash)."""
    flags = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    types = [("Prescott", "pni"), ("Nehalem", "sse4_2"), ("SandyBridge", "avx"),
             ("Haswell", "avx2"), ("SkylakeX", "avx512f"), ("Zen", "avx2")]
    supported, skipped = [], []
    for name, flag in types:
        (supported if flag in flags else skipped).append(name)
    return supported, skipped


def test_matrix_across_openblas_core_types(base, capsys):
    if sys.platform != "linux":
        pytest.skip("OPENBLAS_CORETYPE is read by OpenBLAS's DYNAMIC_ARCH builds on Linux")
    supported, skipped = _supported_core_types()
    if len(supported) < 2:
        pytest.skip(f"this CPU runs fewer than two OpenBLAS core types ({supported})")
    # Three core types with different BLAS kernels (SSE, AVX, AVX2/FMA) are enough to catch a
    # BLAS-dependent result; more only cost time.
    chosen = [t for t in ("Nehalem", "SandyBridge", "Haswell", "SkylakeX") if t in supported]
    parquet_base = None
    failures = {}
    for core in chosen:
        env = dict(os.environ, OPENBLAS_CORETYPE=core)
        proc = subprocess.run([sys.executable, str(HERE / "determinism_cases.py")], env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        got = json.loads(proc.stdout)
        if parquet_base is None:
            parquet_base = got["parquet"]
        for fmt, ref in (("numpy", base), ("parquet", parquet_base)):
            bad = _diff(ref, got[fmt])
            if bad:
                failures[f"{core}/{fmt}"] = bad
    with capsys.disabled():
        print(f"\ndeterminism matrix (OpenBLAS core types): {', '.join(chosen)} x 2 formats x "
              f"{len(base)} cases; not run on this CPU: {', '.join(skipped) or 'none'}")
    assert not failures, failures
