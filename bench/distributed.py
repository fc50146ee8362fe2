"""fastal on Dask: 1 vs 2 local worker processes vs the single-process path, same cores.

    python bench/distributed.py                      # the full run (~10 min on 2 cores)
    python bench/distributed.py --rows 2000000 --kc-rows 200000 --k 50   # a quick one

Measures, and checks every distributed answer against the single-machine one:

1. scoring: top-1000 margin of a ``--rows`` x 10 float32 Parquet directory (files of
   1,000,000 rows) by the single-process ``fastal.top_k`` and with ``client=`` on a
   LocalCluster of 1 worker (1 process, Numba on both cores) and 2 workers (1 core each);
2. exact and two-round greedy k-center of ``--kc-rows`` x 128 uniform float32 rows
   (unstructured data; 8 Parquet files), k = ``--k``: ``fastal.kcenter`` on the driver vs
   exact (one round trip per pick) and two-round (core-set factor 4);
3. the per-pick round trip alone (a tiny pool: the time of a pick is all overhead), and
   the bytes a pick moves per shard;
4. two-round's covering radius against exact's on real data (Fashion-MNIST, PCA to 64
   dimensions, when it is cached) and on the unstructured rows.

Data goes to ``--data-dir`` (default /work/tmp-bench), deleted at the end unless ``--keep``.
Prints markdown tables and the numbers the cost model of bench/README.md takes.
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import shutil
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

# This file's name would shadow the ``distributed`` package for the script and its worker
# processes: take its folder off the path, put the repository on it.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import fastal  # noqa: E402
import fastal.distributed as fd  # noqa: E402


def _list(values):
    return pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), values.shape[1])


def write_probs(directory, rows, classes=10, file_rows=1_000_000, seed=0):
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    for f, start in enumerate(range(0, rows, file_rows)):
        path = os.path.join(directory, f"part{f:04d}.parquet")
        if os.path.exists(path):
            continue
        n = min(file_rows, rows - start)
        p = rng.random((n, classes), dtype=np.float32) ** 3
        p /= p.sum(axis=1, keepdims=True)
        pq.write_table(pa.table({"probs": _list(p)}), path, row_group_size=250_000)


def write_rows(directory, X, files):
    os.makedirs(directory, exist_ok=True)
    bounds = np.linspace(0, X.shape[0], files + 1).astype(int)
    for f in range(files):
        pq.write_table(pa.table({"emb": _list(X[bounds[f]:bounds[f + 1]])}),
                       os.path.join(directory, f"part{f:04d}.parquet"),
                       row_group_size=65_536)


def cluster(n_workers):
    from distributed import Client, LocalCluster

    c = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                     dashboard_address=None, silence_logs=logging.CRITICAL)
    return c, Client(c)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def same(a, b, what):
    if not (np.array_equal(a.indices, b.indices) and np.array_equal(a.scores, b.scores)):
        raise SystemExit(f"{what}: the distributed answer differs from one machine's")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=50_000_000)
    ap.add_argument("--kc-rows", type=int, default=2_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--data-dir", default="/work/tmp-bench")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    try:
        run(args)
    finally:
        if not args.keep:
            shutil.rmtree(args.data_dir, ignore_errors=True)


def run(args):
    import numba

    probs_dir = os.path.join(args.data_dir, f"probs-{args.rows}")
    print(f"machine: {os.cpu_count()} cores, numba threads {numba.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    t, _ = timed(lambda: write_probs(probs_dir, args.rows))
    print(f"wrote {args.rows:,} x 10 float32 to {probs_dir} in {t:.0f} s", flush=True)

    # ---------------------------------------------------------------- 1. scoring
    k = 1000
    fastal.top_k(probs_dir, k, "margin")  # compile, page cache
    t_single, want = timed(lambda: fastal.top_k(probs_dir, k, "margin"))
    rows = [("single process (numba 2 threads)", t_single, 1.0)]
    numbers = {"rows": args.rows, "single_score_s": t_single}
    for n_workers in (1, 2):
        c, client = cluster(n_workers)
        try:
            fastal.top_k(probs_dir, k, "margin", client=client)  # warm the workers
            t, got = timed(lambda: fastal.top_k(probs_dir, k, "margin", client=client))
            same(got, want, f"top_k on {n_workers} workers")
            rows.append((f"Dask, {n_workers} worker{'s' * (n_workers > 1)} "
                         f"x 1 thread", t, t / t_single))
            numbers[f"score_s_{n_workers}w"] = t
        finally:
            client.close()
            c.close()
    n_files = len(os.listdir(probs_dir))
    print(f"\n### Scoring: top-{k} margin of {args.rows:,} x 10 float32 rows "
          f"({n_files} Parquet files)\n")
    print("| path | seconds | rows/s | vs single process |\n|---|---|---|---|")
    for name, t, ratio in rows:
        print(f"| {name} | {t:.2f} | {args.rows / t:,.0f} | {ratio:.2f}x |")
    moved = n_files * k * (8 + 4)
    print(f"\nbytes back to the driver: {n_files} partitions x {k} candidates x 12 B = "
          f"{moved / 1e6:.2f} MB", flush=True)
    shutil.rmtree(probs_dir, ignore_errors=True)  # 2 GB: not needed any more

    # ---------------------------------------------------------------- 2. k-center
    rng = np.random.default_rng(1)
    X = rng.random((args.kc_rows, args.dim), dtype=np.float32)
    emb_dir = os.path.join(args.data_dir, f"emb-{args.kc_rows}")
    write_rows(emb_dir, X, 8)
    kk = args.k
    fastal.kcenter(X[:20_000], 5)  # compile
    t_single, want = timed(lambda: fastal.kcenter(X, kk, seed=0))
    exact_radius = float(want.extra["covering_radius"][-1])
    print(f"\n### Greedy k-center: {args.kc_rows:,} x {args.dim} uniform float32, k = {kk}\n")
    print("| path | seconds | per pick (ms) | covering radius | vs exact radius |")
    print("|---|---|---|---|---|")
    print(f"| fastal.kcenter, one process (numba 2 threads) | {t_single:.1f} | "
          f"{t_single / kk * 1e3:.0f} | {exact_radius:.4f} | 1.000 |")
    numbers.update(kc_rows=args.kc_rows, dim=args.dim, k=kk, single_kcenter_s=t_single)
    for n_workers in (1, 2):
        c, client = cluster(n_workers)
        try:
            fd.kcenter(emb_dir, 3, column="emb", client=client)  # load, warm
            t, got = timed(lambda: fd.kcenter(emb_dir, kk, column="emb", seed=0,
                                              client=client))
            same(got, want, f"exact k-center on {n_workers} workers")
            print(f"| exact, Dask {n_workers} worker{'s' * (n_workers > 1)} | {t:.1f} | "
                  f"{t / kk * 1e3:.0f} | {got.extra['covering_radius'][-1]:.4f} | 1.000 |",
                  flush=True)
            numbers[f"exact_s_{n_workers}w"] = t
            t, got = timed(lambda: fd.kcenter(emb_dir, kk, column="emb", seed=0,
                                              client=client, mode="two_round"))
            r = got.extra["covering_radius"]
            print(f"| two-round (factor 4), Dask {n_workers} worker{'s' * (n_workers > 1)} | "
                  f"{t:.1f} | - | {r:.4f} | {r / exact_radius:.3f} |", flush=True)
            numbers[f"two_round_s_{n_workers}w"] = t
            numbers[f"two_round_ratio_{n_workers}w"] = r / exact_radius
        finally:
            client.close()
            c.close()
    shutil.rmtree(emb_dir, ignore_errors=True)
    del X

    # ---------------------------------------------------------------- 3. round trip
    tiny = rng.random((4000, 8), dtype=np.float32)
    print("\n### Per-pick round trip (4,000 x 8 rows: a pick is all overhead)\n")
    print("| shards | per pick (ms) |\n|---|---|")
    import dask.array as da

    for n_workers in (1, 2):
        c, client = cluster(n_workers)
        try:
            arr = da.from_array(tiny, chunks=(4000 // n_workers, 8))
            fd.kcenter(arr, 3, client=client)
            t, _ = timed(lambda: fd.kcenter(arr, 400, client=client))
            print(f"| {n_workers} | {t / 400 * 1e3:.2f} |", flush=True)
            numbers[f"rtt_ms_{n_workers}"] = t / 400 * 1e3
        finally:
            client.close()
            c.close()
    d = args.dim
    sent = len(pickle.dumps((np.zeros((1, d)), np.zeros(1, np.int64), 10)))
    back = len(pickle.dumps((1.0, 10, 1.0, np.zeros(d))))
    print(f"\nbytes per pick per shard at d = {d}: {sent} sent + {back} back "
          f"(payload; the RPC framing adds ~100-200 B)")
    numbers["bytes_per_pick_per_shard"] = sent + back

    # ---------------------------------------------------------------- 4. real data
    print("\n### Two-round vs exact covering radius\n")
    print("| data | k | exact radius | two-round radius | ratio | certified bound / exact |")
    print("|---|---|---|---|---|---|")
    sets = []
    try:
        from sklearn.decomposition import PCA

        from fastal.datasets import load_fashion_mnist

        F, _ = load_fashion_mnist(subset="all", fetch=False)
        sets.append(("Fashion-MNIST 70,000 x 64 (PCA)",
                     PCA(64, random_state=0).fit_transform(F).astype(np.float32)))
    except Exception as exc:  # noqa: BLE001 - not cached: say so, go on
        print(f"(Fashion-MNIST not available: {exc})")
    sets.append(("uniform 70,000 x 64", rng.random((70_000, 64), dtype=np.float32)))
    c, client = cluster(2)
    try:
        for name, data in sets:
            path = os.path.join(args.data_dir, "real")
            shutil.rmtree(path, ignore_errors=True)
            write_rows(path, data, 7)
            for kk in (100, 1000):
                exact = fastal.kcenter(data, kk, seed=0).extra["covering_radius"][-1]
                got = fd.kcenter(path, kk, column="emb", seed=0, client=client,
                                 mode="two_round")
                r = got.extra["covering_radius"]
                print(f"| {name} | {kk} | {exact:.4f} | {r:.4f} | {r / exact:.3f} | "
                      f"{got.extra['radius_bound'] / exact:.3f} |", flush=True)
    finally:
        client.close()
        c.close()
    print("\nnumbers for the cost model:", {k: (round(v, 4) if isinstance(v, float) else v)
                                             for k, v in numbers.items()})


if __name__ == "__main__":
    main()
