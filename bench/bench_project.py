"""Annotation rounds at scale: ``fastal select DIR`` on a 10,000,000-row Parquet pool.

The pool: string ids, d = 128 float32 embeddings, C = 10 class probabilities (5.7 GB of
Parquet, written once and reused). One round of ``uncertain_kcenter`` with k = 1,000, run
as the real command in a fresh process, reports wall time per phase (read ids, join, score,
read candidates, select, ledger write, batch files) and peak RSS (VmHWM) beside the
``--dry-run`` estimate; then ``fastal label`` imports 100,000 labels.

    python bench/bench_project.py [--rows 10000000] [--dir /tmp/fastal-bench]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

_MEASURE = """
import contextlib, io, json, sys, time
from fastal.cli import main
t0 = time.perf_counter()
rc = main(sys.argv[1:])
seconds = time.perf_counter() - t0
peak = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"rc": rc, "seconds": seconds, "peak": peak}))
"""


def write_pool(path: Path, rows: int, d: int = 128, c: int = 10, group: int = 100_000):
    rng = np.random.default_rng(0)
    schema = pa.schema([("id", pa.string()), ("emb", pa.list_(pa.float32(), d)),
                        ("probs", pa.list_(pa.float32(), c))])
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, schema, compression="snappy") as writer:
        for start in range(0, rows, group):
            n = min(group, rows - start)
            emb = rng.standard_normal((n, d), dtype=np.float32)
            logits = rng.standard_normal((n, c), dtype=np.float32) * 2
            probs = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs /= probs.sum(axis=1, keepdims=True)
            ids = pa.array([f"doc-{i:09d}" for i in range(start, start + n)])
            writer.write_table(pa.table({
                "id": ids,
                "emb": pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), d),
                "probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.astype(np.float32).ravel()), c),
            }, schema=schema), row_group_size=group)
    os.replace(tmp, path)


def measure(argv):
    done = subprocess.run([sys.executable, "-c", _MEASURE] + argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--dir", default="/tmp/fastal-bench")
    parser.add_argument("--labels", type=int, default=100_000)
    args = parser.parse_args()
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    pool = root / f"pool-{args.rows}.parquet"
    if not pool.exists():
        t0 = time.perf_counter()
        write_pool(pool, args.rows)
        print(f"wrote {pool} ({pool.stat().st_size / 2**30:.2f} GiB) in "
              f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    project = root / f"project-{args.rows}"
    if project.exists():
        import shutil
        shutil.rmtree(project)
    init, _ = measure(["init", str(project), "--pool", str(pool), "--id-column", "id",
                       "--embedding-column", "emb", "--probs-column", "probs",
                       "--strategy", "uncertain_kcenter", "--quiet"])
    dry = subprocess.run([sys.executable, "-m", "fastal", "select", str(project), "--k", "1000",
                          "--dry-run"], capture_output=True, text=True, check=True).stdout
    select, log = measure(["select", str(project), "--k", "1000"])
    import re
    line = re.search(r"picked \d+ ids by \w+ \((.*)\)", log).group(1)
    phases = {name: float(value) for name, value in
              (part.rsplit(" ", 2)[:2] for part in line.split(", "))}
    # 100,000 labels: the 1,000 picked plus 99,000 other pool ids, three annotators' worth.
    rng = np.random.default_rng(1)
    batch = pq.read_table(project / "rounds" / "round-0001" / "batch.parquet")["id"].to_pylist()
    others = rng.choice(args.rows, args.labels - len(batch), replace=False)
    ids = batch + [f"doc-{i:09d}" for i in others]
    labels = [str(x) for x in rng.integers(0, 10, len(ids))]
    import pyarrow.csv as pacsv
    pacsv.write_csv(pa.table({"id": ids, "label": labels}), root / "labels.csv")
    label, label_log = measure(["label", str(project), str(root / "labels.csv")])
    again, _ = measure(["label", str(project), str(root / "labels.csv")])
    result = {"rows": args.rows, "pool_gib": pool.stat().st_size / 2**30, "init": init,
              "dry_run": dry, "select": select, "phases": phases, "select_log": log,
              "label": label, "label_again": again, "label_log": label_log}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
