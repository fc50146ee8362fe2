"""fastal vs scikit-activeml's greedy k-center at full size: 1M x 128, L = 1,000, k = 1,000.

scikit-activeml keeps a (k, N + L) float64 matrix (8 GB here), so ``bench_kcenter.py`` runs
it on a 20k-row subset; this script runs it once at full size, alone, through the same
adapter (``bench/peers.py``), with fastal timed twice before and twice after it in this
process on the same data (``bench_kcenter.make_data``, blobs, seed 0). It prints every
time, whether the picks agree, and the ratio from best to best.

    python bench/kcenter_full_scikit_activeml.py [--peers-python /work/peers-venv/bin/python]

About 3-4 minutes and 9 GB of memory on 2 cores.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench_kcenter import make_data  # noqa: E402
from peers import run_peers  # noqa: E402

from fastal.diversity.kcenter import _kcenter  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers-python", default=os.environ.get(
        "FASTAL_PEERS_PYTHON", "/work/peers-venv/bin/python"))
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--rows", type=int, default=1_000_000, help="pool rows (smoke tests)")
    args = parser.parse_args()
    X, labeled = make_data(args.rows, 128, 1_000, "blobs", 0)
    _kcenter(X[:4000], 20, labeled=np.arange(64))  # JIT cache, threads

    def fastal():
        t0 = time.perf_counter()
        sel = _kcenter(X, 1000, labeled=labeled)
        return time.perf_counter() - t0, sel.indices

    times, picks = [], None
    for _ in range(2):
        seconds, picks = fastal()
        times.append(seconds)
    print("fastal before:", ", ".join(f"{t:.2f} s" for t in times), flush=True)
    results, meta = run_peers("kcenter", {"pool": X, "labeled": X[labeled], "k": 1000},
                              python=args.peers_python, libraries=["scikit-activeml"],
                              timeout=args.timeout)
    result = next(iter(results.values()))
    peer = np.asarray(result.output)
    same = bool(np.array_equal(peer, picks))
    versions = meta.get("versions", meta)
    print(f"scikit-activeml {versions.get('scikit-activeml', '?')}: "
          f"{min(result.seconds):.1f} s, same picks as fastal: {same}", flush=True)
    after = [fastal()[0] for _ in range(2)]
    print("fastal after:", ", ".join(f"{t:.2f} s" for t in after))
    times += after
    print(f"ratio best to best: {min(result.seconds) / min(times):.1f}x; "
          f"range {min(result.seconds) / max(times):.1f}-{min(result.seconds) / min(times):.1f}x")


if __name__ == "__main__":
    main()
