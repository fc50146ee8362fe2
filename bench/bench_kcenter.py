"""Exact greedy k-center: fastal vs the plain NumPy incremental loop, on the same data.

Each method runs in its own subprocess on the same ``.npy`` file, so that its peak resident
memory can be measured: ``VmHWM - VmRSS`` after loading the data and warming up (JIT cache,
FAISS/BLAS threads), with the high-water mark reset through ``/proc/self/clear_refs``.

The NumPy loop is what one writes by hand: one FAISS flat search for the initial distance
to the labeled set, then per pick one float32 mat-vec ``|x|^2 + |c|^2 - 2 X c`` and an
``np.minimum``. Its float32 distances carry cancellation error, so its picks can drift from
the exact greedy order; the table reports whether the two pick lists are identical and, if
not, the first pick at which they differ.

    python bench/bench_kcenter.py            # full table (several minutes, ~3 GB RAM)
    python bench/bench_kcenter.py --quick    # small sizes, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

FULL_CASES = [  # (N, d, L, k)
    (1_000_000, 128, 1_000, 100),
    (1_000_000, 128, 1_000, 1_000),
    (200_000, 64, 100, 1_000),
    (250_000, 384, 1_000, 1_000),
]
QUICK_CASES = [(20_000, 32, 100, 100), (50_000, 64, 200, 300)]


def make_data(n, d, n_labeled, kind, seed):
    """Pool (n, d) float32 and labeled positions.

    ``blobs``: embedding-like data, a mixture of 1000 Gaussian clusters whose centres lie in
    a 32-dimensional subspace, plus small isotropic noise. ``gaussian``: isotropic N(0, I),
    the worst case for any triangle-inequality pruning (all distances concentrate).
    """
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        X = rng.standard_normal((n, d), dtype=np.float32)
    else:
        latent = min(32, d)
        basis = rng.standard_normal((latent, d), dtype=np.float32) / np.sqrt(latent)
        centers = 3.0 * rng.standard_normal((1000, latent), dtype=np.float32)
        X = np.empty((n, d), dtype=np.float32)
        for start in range(0, n, 100_000):
            stop = min(n, start + 100_000)
            z = centers[rng.integers(1000, size=stop - start)]
            z += rng.standard_normal(z.shape, dtype=np.float32)
            X[start:stop] = z @ basis
            X[start:stop] += 0.1 * rng.standard_normal((stop - start, d), dtype=np.float32)
    labeled = np.sort(rng.choice(n, n_labeled, replace=False)).astype(np.int64)
    return X, labeled


def numpy_loop(X, k, labeled):
    """Plain incremental greedy: FAISS initial search + one float32 mat-vec per pick."""
    import faiss

    n, d = X.shape
    index = faiss.IndexFlatL2(d)
    index.add(np.ascontiguousarray(X[labeled]))
    mind = np.empty(n, dtype=np.float32)  # squared distances (same argmax)
    for start in range(0, n, 65536):
        dist, _ = index.search(X[start:start + 65536], 1)
        mind[start:start + 65536] = dist[:, 0]
    mind[labeled] = -np.inf
    sq_norms = np.einsum("ij,ij->i", X, X)
    picks = np.empty(k, dtype=np.int64)
    for t in range(k):
        i = int(np.argmax(mind))
        picks[t] = i
        d2 = X @ X[i]
        d2 *= -2.0
        d2 += sq_norms
        d2 += sq_norms[i]
        np.minimum(mind, d2, out=mind)
        mind[i] = -np.inf
    return picks


def _status(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def worker(args):
    """Run one method in this process; print a JSON line with time, memory and picks file."""
    import faiss  # noqa: F401  (warm-up below loads it)

    from fastal.diversity.kcenter import _kcenter

    rng = np.random.default_rng(0)
    small = rng.standard_normal((3000, 8), dtype=np.float32)
    if args.worker == "fastal":
        _kcenter(small, 20, labeled=np.arange(30))
        _kcenter(small, 20)
    else:
        numpy_loop(small, 20, np.arange(30))
    X = np.load(args.data)
    labeled = np.load(args.labeled)
    base = _status("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    stats = {}
    t0 = time.perf_counter()
    if args.worker == "fastal":
        picks = _kcenter(X, args.k, labeled=labeled, stats=stats).indices
    else:
        picks = numpy_loop(X, args.k, labeled)
    elapsed = time.perf_counter() - t0
    peak = _status("VmHWM")
    np.save(args.out, picks)
    print(json.dumps({"time": elapsed, "added": peak - base, "stats": stats}))


def run_method(method, data, labeled, k, out):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", method, "--data", data,
           "--labeled", labeled, "--k", str(k), "--out", out]
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--data-kind", choices=["blobs", "gaussian"], default="blobs")
    parser.add_argument("--cases", default=None,
                        help="semicolon-separated N,d,L,k cases, e.g. '100000,64,100,500'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--labeled", help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return
    if args.cases:
        cases = [tuple(int(v) for v in c.split(",")) for c in args.cases.split(";")]
    else:
        cases = QUICK_CASES if args.quick else FULL_CASES

    import numba

    print(f"command: python bench/bench_kcenter.py {' '.join(sys.argv[1:])}")
    print(f"data: {args.data_kind}, float32, labeled = random pool positions; "
          f"numba threads: {numba.get_num_threads()}, cpus: {os.cpu_count()}\n")
    print("| N | d | L | k | fastal s | NumPy loop s | ratio | fastal added MB (B/row) "
          "| NumPy added MB (B/row) | picks identical | rows evaluated |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    phases = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, d, n_labeled, k in cases:
            X, labeled = make_data(n, d, n_labeled, args.data_kind, args.seed)
            data, lab = os.path.join(tmp, "X.npy"), os.path.join(tmp, "labeled.npy")
            np.save(data, X)
            np.save(lab, labeled)
            del X
            res, picks = {}, {}
            for method in ("fastal", "numpy"):
                out = os.path.join(tmp, f"{method}.npy")
                res[method] = run_method(method, data, lab, k, out)
                picks[method] = np.load(out)
            same = np.array_equal(picks["fastal"], picks["numpy"])
            if same:
                ident = "yes"
            else:
                first = int(np.flatnonzero(picks["fastal"] != picks["numpy"])[0])
                ident = f"no (first differs at pick {first})"
            st = res["fastal"]["stats"]
            evaluated = st["row_evaluations"] / (n * k)
            fa, nu = res["fastal"], res["numpy"]
            print(f"| {n:,} | {d} | {n_labeled:,} | {k:,} | {fa['time']:.2f} | {nu['time']:.2f} "
                  f"| {nu['time'] / fa['time']:.1f}x | {fa['added'] / 2**20:.0f} "
                  f"({fa['added'] / n:.1f}) | {nu['added'] / 2**20:.0f} ({nu['added'] / n:.1f}) "
                  f"| {ident} | {100 * evaluated:.1f}% (G={st['n_groups']}) |", flush=True)
            phases.append((n, d, n_labeled, k, st["seconds"]))
    print("\nfastal phases (s): " + "; ".join(
        f"N={n:,} d={d} L={n_labeled:,} k={k:,}: "
        + ", ".join(f"{name} {sec:.2f}" for name, sec in secs.items())
        for n, d, n_labeled, k, secs in phases))


if __name__ == "__main__":
    main()
