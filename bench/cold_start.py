"""Cold start: the first call of each kernel family in a fresh process (issue 13, item 4).

For each call: a new interpreter with an empty Numba cache (``NUMBA_CACHE_DIR`` a new
temporary directory) times ``import fastal`` and the first call on a small input (compile
time dominates); then a second new interpreter with the now-filled cache times the same
(import + load from the cache). Targets: cold first call <= 3 s; warm import + first call
<= 1 s.

Each call is measured ``--repeat`` times (default 3), each time with a new empty cache, and
the table gives the medians, with the cold first call's range: on a 2-core VM the same cold
compile varies by +-20 % between fresh processes (2.6-3.7 s measured for one call), so a
single sample says little about a 3 s target.

Usage: ``python bench/cold_start.py [--only SUBSTRING,...] [--repeat N] [--out bench/cold_start.md]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine, table  # noqa: E402

CALLS = {
    # Numba's own floor on this machine: the first compilation in a process (its target
    # context, typing registries and the scipy.linalg import its array maths triggers) of a
    # one-line function; compiled again in the warm run (a lambda cannot be cached).
    "reference: Numba alone, a one-line @njit function":
        "__import__('numba').njit(lambda a: a + 1.0)(1.0)",
    "margin (float32 probabilities)": "fastal.score(p, 'margin')",
    "entropy (float32 probabilities)": "fastal.score(p, 'entropy')",
    "margin (float64 probabilities)": "fastal.score(p.astype(np.float64), 'margin')",
    "margin (float32 logits)": "fastal.score(np.log(p), 'margin', from_logits=True)",
    "top_k margin (float32 probabilities)": "fastal.top_k(p, 5, 'margin')",
    "bald (committee, float32)": "fastal.score(np.stack([p, p[::-1]]), 'bald')",
    "vote_entropy (committee, float32)": "fastal.score(np.stack([p, p[::-1]]), 'vote_entropy')",
    "bald (committee, float32 logits)":
        "fastal.score(np.log(np.stack([p, p[::-1]])), 'bald', from_logits=True)",
    "LinearHead margin (embeddings)":
        "fastal.score(x, 'margin', model=fastal.models.LinearHead(w, np.zeros(10, np.float32)))",
    # 2,000 x 16 pools are small jobs (kcenter._SMALL_JOB_WORK): float64 full scans
    "kcenter (small job: full scans)": "fastal.kcenter(x, 10)",
    "kcenter, 500 labeled rows (small job)": "fastal.kcenter(x, 10, labeled=np.arange(500))",
    "weighted kcenter (small job)": "fastal.kcenter(x, 10, weights=u)",
    # 40,000 x 16, past the small-job limit: in a fresh process whose cache lacks the lazy
    # path's, the groups' or the float32 scans' kernels, jobs of up to 2**32 coordinate
    # visits (kcenter._COLD_JOB_WORK) run as full scans too
    "kcenter, 500 labeled rows, 40,000-row pool (cold: full scans)":
        "fastal.kcenter(xr, 100, labeled=np.arange(500))",
    "weighted kcenter, 40,000-row pool (cold: full scans)": "fastal.kcenter(xr, 100, weights=ur)",
    "kcenter, clustered 40,000-row pool, no labels (cold: full scans)":
        "fastal.kcenter(xc, 300)",
    "kcenter, clustered 40,000-row pool, k = 1,000 (cold: full scans)":
        "fastal.kcenter(xc, 1000)",
    # the paths of jobs past that limit (or of any job once they are cached), forced on the
    # same pools (small_jobs=False, as fastal warmup calls them): what such a job compiles
    "large-job path: lazy (500 labeled rows, 40,000-row pool)":
        "_kcenter(xr, 100, labeled=np.arange(500), small_jobs=False)",
    "large-job path: lazy, weighted (500 labeled rows, 40,000-row pool)":
        "_kcenter(xr, 100, labeled=np.arange(500), weights=ur, small_jobs=False)",
    "large-job path: groups (weighted, 40,000-row pool)":
        "_kcenter(xr, 100, weights=ur, path='grouped')",
    "large-job path: float32 scans (clustered 40,000-row pool, k = 300)":
        "_kcenter(xc, 300, path='scan')",
    "large-job path: lazy, gives up, float32 scans (clustered, k = 1,000)":
        "_kcenter(xc, 1000, small_jobs=False)",
    "badge": "fastal.select(x, 10, 'badge', probs=p)",
}

_CHILD = """
import time
t0 = time.perf_counter()
import numpy as np
import fastal, fastal.models
from fastal.diversity.kcenter import _kcenter
t1 = time.perf_counter()
rng = np.random.default_rng(0)
p = rng.dirichlet(np.ones(10), 2000).astype(np.float32)
x = rng.standard_normal((2000, 16)).astype(np.float32)
w = rng.standard_normal((16, 10)).astype(np.float32)
u = rng.random(2000)
# 40,000 rows in 300 tight clusters: past 2**15 rows the lazy k-center gives up on data
# where each pick empties a cluster, and (no labeled set, float32) the float32 scans take over
c = rng.standard_normal((300, 16)).astype(np.float32) * 10
xc = (c[rng.integers(300, size=40000)] + 0.05 * rng.standard_normal((40000, 16))).astype(np.float32)
xr = rng.standard_normal((40000, 16)).astype(np.float32)
ur = rng.random(40000)
t2 = time.perf_counter()
c2 = time.process_time()
{call}
t3 = time.perf_counter()
c3 = time.process_time()
import json
print(json.dumps({{"import": t1 - t0, "first": t3 - t2, "first_cpu": c3 - c2}}))
"""


def run_child(call, cache):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    out = subprocess.run([sys.executable, "-c", _CHILD.format(call=call)], env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    parser.add_argument("--only", default=None,
                        help="comma-separated substrings: run only the calls whose name has one")
    parser.add_argument("--repeat", type=int, default=3,
                        help="fresh cold + warm process pairs per call; the table gives medians")
    args = parser.parse_args(argv)
    rows = []
    only = args.only.split(",") if args.only else None
    for name, call in CALLS.items():
        if only and not any(o in name for o in only):
            continue
        colds, warms = [], []
        for _ in range(max(1, args.repeat)):
            with tempfile.TemporaryDirectory(prefix="fastal-cold-") as cache:
                colds.append(run_child(call, cache))
                warms.append(run_child(call, cache))
        cold = {key: statistics.median(c[key] for c in colds) for key in colds[0]}
        warm = {key: statistics.median(w[key] for w in warms) for key in warms[0]}
        warm_total = statistics.median(w["import"] + w["first"] for w in warms)
        firsts = [c["first"] for c in colds]
        rows.append([name, f"{cold['import']:.2f}", f"{cold['first']:.2f}",
                     f"{min(firsts):.2f}-{max(firsts):.2f}", f"{cold['first_cpu']:.2f}",
                     "met" if cold["first"] <= 3 else "**missed**",
                     f"{warm['import']:.2f}", f"{warm['first']:.2f}", f"{warm_total:.2f}",
                     "met" if warm_total <= 1 else "**missed**"])
        print(f"done: {name}", file=sys.stderr, flush=True)
    text = "\n".join([
        "## Cold start: first call in a fresh process (issue 13, item 4)", "",
        f"Command: `python bench/cold_start.py --repeat {args.repeat}`  ",
        f"Machine: {machine()}", "",
        f"Seconds, medians of {args.repeat} fresh process pairs (wall, and the process's CPU time for the cold first call: compilation is "
        "single-threaded, so on a busy machine CPU time is the better measure of its cost). "
        "Cold: empty Numba cache (compiles). Warm: the cache the cold run filled.", "",
        table(["call", "cold: import", "cold: first call", "cold: first call, range",
               "cold: first call, CPU s", "<= 3 s", "warm: import",
               "warm: first call", "warm: import + call", "<= 1 s"], rows), ""])
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
