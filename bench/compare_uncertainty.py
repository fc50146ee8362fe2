"""Side-by-side: fastal's uncertainty scoring vs the NumPy formula vs peer libraries.

One run, one machine, the same float32 data for everyone. Prints markdown tables:

1. a measured streaming-read bandwidth (parallel sum over 2 GiB);
2. per (rows, classes, method): rows/s of fastal (``score(..., out=buffer)``: a reused
   output, as a scoring service would keep), of the plain vectorised NumPy formula and
   of each peer (peers at --peer-rows rows, they are slow), fastal as a fraction of the
   bandwidth, and the ratios fastal/NumPy and fastal/fastest peer;
3. end to end: ``top_k`` from a 10M x 10 float32 Arrow IPC file (warm page cache) and from
   a Parquet file, against ``top_k`` on the same array in memory, with the peak RSS each
   run adds (fresh process per run).

    python bench/compare_uncertainty.py                 # full run (about 10 minutes)
    python bench/compare_uncertainty.py --quick         # small sizes, a smoke test

Peers run in this interpreter when installed (``pip install -e '.[bench]'``), else in the
interpreter named by $FASTAL_PEERS_PYTHON (see bench/peers.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402
import peers  # noqa: E402

import fastal  # noqa: E402

METHODS = fastal.UNCERTAINTY_METHODS


def make_probs(n, c, seed=0, block=1 << 20):
    """Softmax of Gaussian logits with a per-row temperature, float32, built in blocks."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, c), dtype=np.float32)
    for s in range(0, n, block):
        z = rng.standard_normal((min(block, n - s), c), dtype=np.float32)
        z *= rng.uniform(0.5, 4.0, size=(z.shape[0], 1)).astype(np.float32)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        out[s:s + z.shape[0]] = z
    return out


def numpy_formula(method):
    """The obvious vectorised NumPy way of each method."""
    if method == "entropy":
        return lambda p: -(p * np.log(p)).sum(axis=1)
    if method == "least_confidence":
        return lambda p: 1.0 - p.max(axis=1)

    def top2(p):
        part = np.partition(p, p.shape[1] - 2, axis=1)
        return part[:, -1], part[:, -2]

    if method == "margin":
        return lambda p: (lambda a, b: 1.0 - (a - b))(*top2(p))
    return lambda p: (lambda a, b: b / a)(*top2(p))


# Peers that loop over rows in Python are timed on fewer rows (their rows/s does not depend
# on the pool size); the others on the full --peer-rows.
SLOW_PEERS = {"small-text": 20_000, "ALiPy": 100_000}


def run_peers(probs, methods, repeat):
    """{(library, method): rows/s} for every available peer (in-process or subprocess)."""
    here = peers.uncertainty_peers()
    if not here and not os.environ.get(peers.PEERS_PYTHON_ENV):
        return {}, {}
    rates, versions = {}, {}
    groups = [(None, probs)] + [([lib], probs[:rows]) for lib, rows in SLOW_PEERS.items()]
    fast = [lib for lib in peers.PEERS if lib not in SLOW_PEERS]
    for libraries, sub in groups:
        libraries = libraries or fast
        if here:
            results = peers.run_here("uncertainty", {"probs": sub}, methods=methods,
                                     libraries=libraries, repeat=repeat)
            meta = {"versions": peers.peer_versions()}
        else:
            results, meta = peers.run_peers("uncertainty", {"probs": sub}, methods=methods,
                                            libraries=libraries, repeat=repeat)
        versions.update(meta.get("versions", {}))
        for (library, method), r in results.items():
            if r.error is None and r.seconds:
                rates[(library, method)] = sub.shape[0] / min(r.seconds)
    return rates, versions


def scoring_tables(sizes, peer_rows, bandwidth, repeat, skip_peers):
    rows = []
    versions = {}
    peer_cache = {}
    for n, c in sizes:
        probs = make_probs(n, c)
        nbytes = probs.nbytes
        peer_rates = {}
        if not skip_peers and peer_rows:
            if c not in peer_cache:  # peers' rows/s do not depend on the pool size
                peer_cache[c] = run_peers(probs[:min(n, peer_rows)], METHODS, repeat=2)
            peer_rates, versions = peer_cache[c]
        for method in METHODS:
            fastal.score(probs[:1000], method)  # compile outside the timing
            buffer = np.empty(n, dtype=np.float32)  # scores into a reused buffer (out=)
            t_fastal = _common.best_of(lambda: fastal.score(probs, method, out=buffer),
                                       repeat=repeat)
            formula = numpy_formula(method)
            with np.errstate(all="ignore"):
                t_numpy = _common.best_of(lambda: formula(probs), repeat=max(1, repeat - 1))
            fastal_rate = n / t_fastal
            numpy_rate = n / t_numpy
            method_rates = {lib: r for (lib, m), r in peer_rates.items() if m == method}
            best_peer = max(method_rates.items(), key=lambda kv: kv[1]) if method_rates else None
            rows.append([
                f"{n:,}", c, method,
                _common.fmt_rate(fastal_rate),
                f"{nbytes / t_fastal / 1e9:.1f} GB/s = {nbytes / t_fastal / bandwidth:.0%}",
                _common.fmt_rate(numpy_rate),
                f"{fastal_rate / numpy_rate:.1f}x",
                ", ".join(f"{lib} {_common.fmt_rate(r)}" for lib, r in sorted(method_rates.items()))
                or "-",
                f"{fastal_rate / best_peer[1]:.0f}x ({best_peer[0]})" if best_peer else "-",
            ])
            print(" | ".join(str(x) for x in rows[-1]), file=sys.stderr)
        del probs
    headers = ["rows", "C", "method", "fastal rows/s", "fastal read rate = share of bandwidth",
               "NumPy rows/s", "fastal / NumPy",
               f"peers rows/s (at {peer_rows:,} rows; small-text 20k, ALiPy 100k)",
               "fastal / fastest peer"]
    return _common.table(headers, rows), versions


# The baseline is taken after a warm-up scan of a small file of the same format, so that
# library code pages and thread pools (a fixed cost, whatever the pool size) are not counted.
RSS_CODE = """
import numpy as np, fastal
fastal.top_k({small!r}, 5, 'margin', id_column='id')
print('BASE', _rss('VmRSS'))
with open('/proc/self/clear_refs', 'w') as fh:  # VmHWM from here: the warm-up's peak not counted
    fh.write('5')
import time
t0 = time.perf_counter()
sel = fastal.top_k({path!r}, 100, 'margin', id_column='id')
print('SECONDS', time.perf_counter() - t0)
"""


def end_to_end_table(n, c, repeat):
    from fastal.demo import write_pool
    import pyarrow.parquet as pq
    import pyarrow.ipc as ipc

    rows = []
    with tempfile.TemporaryDirectory(prefix="fastal-bench-", dir=os.environ.get("TMPDIR")) as tmp:
        ipc_path = os.path.join(tmp, "pool.arrow")
        pq_path = os.path.join(tmp, "pool.parquet")
        write_pool(ipc_path, n, c, seed=1)
        table = ipc.open_file(ipc_path).read_all()
        pq.write_table(table, pq_path, row_group_size=1 << 18, compression="none")
        small = {ipc_path: os.path.join(tmp, "small.arrow"), pq_path: os.path.join(tmp, "small.parquet")}
        write_pool(small[ipc_path], 50_000, c, seed=2)
        pq.write_table(ipc.open_file(small[ipc_path]).read_all(), small[pq_path])
        probs = np.ascontiguousarray(
            table.column("probs").combine_chunks().flatten().to_numpy().reshape(n, c))
        ids = table.column("id").to_numpy()
        del table
        want = fastal.top_k(probs, 100, "margin")
        t_mem = _common.best_of(lambda: fastal.top_k(probs, 100, "margin"), repeat=repeat)
        rows.append(["NumPy array in memory", f"{probs.nbytes / 1e6:,.0f} MB",
                     _common.fmt_rate(n / t_mem), "100%", "-", "-"])
        del probs
        for label, path in (("Arrow IPC file, mmap (warm cache)", ipc_path),
                            ("Parquet file, uncompressed (warm cache)", pq_path)):
            got = fastal.top_k(path, 100, "margin", id_column="id")
            assert np.array_equal(got.indices, want.indices)
            assert np.array_equal(got.ids, ids[want.indices])
            t = _common.best_of(lambda: fastal.top_k(path, 100, "margin", id_column="id"),
                                repeat=repeat)
            size = os.path.getsize(path)
            rss = _common.peak_rss_of(RSS_CODE.format(path=path, small=small[path]))
            rows.append([label, f"{size / 1e6:,.0f} MB", _common.fmt_rate(n / t),
                         f"{t_mem / t:.0%}", f"{rss['added'] / 1e6:,.1f} MB",
                         f"{rss['added'] / size:.1%}"])
            print(" | ".join(rows[-1]), file=sys.stderr)
    headers = ["top_k(k=100, margin) source", "size", "rows/s", "share of in-memory rate",
               "peak RSS added", "RSS added / file size"]
    return _common.table(headers, rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-peers", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        sizes, peer_rows, e2e = [(200_000, 10), (100_000, 100)], 50_000, (1_000_000, 10)
    else:
        sizes = [(1_000_000, 10), (1_000_000, 100), (10_000_000, 10), (10_000_000, 100)]
        peer_rows, e2e = 1_000_000, (10_000_000, 10)
    started = time.strftime("%Y-%m-%d %H:%M")
    bandwidth = _common.read_bandwidth(gib=0.5 if args.quick else 2.0)
    scoring, versions = scoring_tables(sizes, peer_rows, bandwidth, args.repeat, args.no_peers)
    e2e_table = end_to_end_table(*e2e, repeat=args.repeat)
    print(f"### Uncertainty scoring, {started}\n")
    print(f"Machine: {_common.machine()}.  ")
    print(f"Measured streaming-read bandwidth (parallel sum, 2 threads): "
          f"{bandwidth / 1e9:.1f} GB/s.  ")
    if versions:
        print("Peers: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v) + ".  ")
    print(f"Command: `python bench/compare_uncertainty.py{' --quick' if args.quick else ''}`\n")
    print(scoring)
    print(f"\n#### End to end, {e2e[0]:,} x {e2e[1]} float32\n")
    print(e2e_table)


if __name__ == "__main__":
    main()
