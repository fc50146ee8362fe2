"""BADGE: fastal vs a plain NumPy implementation vs scikit-activeml ``Badge``, same data.

Each method runs in its own subprocess on the same ``.npy`` files, so that its peak
resident memory can be measured: the high-water mark (``VmHWM``, reset through
``/proc/self/clear_refs`` after loading the data and warming up) minus the RSS at that point,
i.e. memory *beyond the inputs*.

- **fastal**: ``fastal.diversity.badge.badge`` (implicit gradient distances, Numba).
- **NumPy**: what one writes by hand without forming the N x (C d) gradient embeddings:
  per pick ``D2 = min(D2, |g|^2 + |g_c|^2 - 2 (P~ p~_c) (X x_c))`` with a float32 mat-vec,
  and ``searchsorted`` on the cumulative ``D2`` for the draw. O(N (C + d)) per pick too.
- **scikit-activeml** ``Badge`` (run with ``/work/peers-venv/bin/python``, or
  ``$FASTAL_PEERS_PYTHON``): forms the explicit float64 gradient embeddings, so it only
  runs on smaller pools; given a fixed-probability classifier and ``fit_clf=False``.

Picks are random draws, so the three lists differ (different generators); rates are
reported as row-picks per second (``N * k / seconds``), comparable across sizes.

    python bench/bench_badge.py            # N=1M x d=128 x C=10, k=1000 (minutes, ~1 GB)
    python bench/bench_badge.py --quick    # small sizes, about a minute
    python bench/bench_badge.py --suite real   # issue 13: the k-center suite's inputs

``--suite real`` runs fastal and the NumPy loop on the inputs of ``bench_kcenter.py --suite
real`` (Fashion-MNIST PCA-50 and raw, Rotten Tomatoes SVD-256, Gaussian 300k x 128, 1M x 32,
1M x 128) at k = 100 and 1,000, with the probabilities of a logistic regression fitted on
the 1,000 labeled rows (real data) or a softmax of random logits (Gaussian, C = 10).
scikit-activeml runs there too where its explicit float64 gradient embeddings fit in
``--peer-bytes`` (2 GiB: Rotten Tomatoes and Fashion-MNIST PCA-50), killed after
``--peer-timeout`` seconds; lightly-mundig has no BADGE.
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

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS_PYTHON = os.environ.get("FASTAL_PEERS_PYTHON", "/work/peers-venv/bin/python")


def make_data(n, d, c, seed):
    """Embedding-like pool (mixture of 1000 Gaussian clusters in a 32-dim subspace) and
    softmax probabilities whose predicted class follows the cluster (with noise)."""
    rng = np.random.default_rng(seed)
    latent = min(32, d)
    basis = rng.standard_normal((latent, d), dtype=np.float32) / np.sqrt(latent)
    centres = 3.0 * rng.standard_normal((1000, latent), dtype=np.float32)
    X = np.empty((n, d), dtype=np.float32)
    P = np.empty((n, c), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        which = rng.integers(1000, size=stop - start)
        z = centres[which] + rng.standard_normal((stop - start, latent), dtype=np.float32)
        X[start:stop] = z @ basis
        logits = 2.0 * rng.standard_normal((stop - start, c), dtype=np.float32)
        logits[np.arange(stop - start), which % c] += 4.0
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        P[start:stop] = e / e.sum(axis=1, keepdims=True)
    return X, P


def numpy_badge(X, P, k, seed=0):
    """k-means++ on implicit gradient embeddings, vectorised NumPy, O(N (C + d)) per pick."""
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    yhat = P.argmax(axis=1)
    Pt = P.astype(np.float64)
    Pt[np.arange(n), yhat] -= 1.0
    xnorm2 = np.einsum("ij,ij->i", X, X, dtype=np.float64)
    gnorm2 = np.einsum("ij,ij->i", Pt, Pt) * xnorm2
    picks = [int(np.argmax(gnorm2))]
    d2 = np.full(n, np.inf)
    for _ in range(1, k):
        c = picks[-1]
        dist = gnorm2 + gnorm2[c] - 2.0 * (Pt @ Pt[c]) * (X @ X[c])
        np.minimum(d2, np.maximum(dist, 0.0), out=d2)
        d2[picks] = 0.0
        cum = np.cumsum(d2)
        picks.append(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")))
    return np.array(picks)


PEER_CODE = r"""
import sys, json, time
import numpy as np
from skactiveml.base import SkactivemlClassifier
from skactiveml.pool import Badge

class FixedProbs(SkactivemlClassifier):
    # returns the given probabilities for the (all unlabeled) pool
    def __init__(self, probs=None, classes=None, missing_label=np.nan):
        super().__init__(classes=classes, missing_label=missing_label)
        self.probs = probs
    def fit(self, X, y, sample_weight=None):
        return self
    def predict_proba(self, X):
        return self.probs

X = np.load(sys.argv[1]); P = np.load(sys.argv[2]).astype(np.float64); k = int(sys.argv[3])
n = int(sys.argv[4]); X = X[:n].astype(np.float64); P = P[:n]
P /= P.sum(axis=1, keepdims=True)
clf = FixedProbs(probs=P, classes=np.arange(P.shape[1]))
y = np.full(n, np.nan)
def rss(field):
    for line in open('/proc/self/status'):
        if line.startswith(field + ':'):
            return int(line.split()[1]) * 1024
warm = FixedProbs(probs=P[:200], classes=np.arange(P.shape[1]))
Badge(random_state=0).query(X[:200], y[:200], warm, fit_clf=False, batch_size=2)
with open('/proc/self/clear_refs', 'w') as fh:
    fh.write('5')
base = rss('VmRSS')
t0 = time.perf_counter()
picks = Badge(random_state=0).query(X, y, clf, fit_clf=False, batch_size=k)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "added": rss('VmHWM') - base,
                  "picks": [int(i) for i in picks]}))
"""


def _status(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def worker(args):
    """Run one method in this process; print JSON (seconds, added peak bytes, picks)."""
    X = np.load(args.data)[:args.n]
    P = np.load(args.probs)[:args.n]
    if args.worker == "fastal":
        from fastal.diversity.badge import _badge, badge

        # JIT warm-up (cached after the first run), the gang kernel included: a process
        # whose cache lacks it picks step by step for its first 10,000 picks (the cold rule)
        badge(X[:5000], P[:5000], 3)
        _badge(X[:5000], P[:5000], 3, gang=True)
        run = lambda: badge(X, P, args.k, seed=0).indices  # noqa: E731
    else:
        numpy_badge(X[:5000], P[:5000], 3)
        run = lambda: numpy_badge(X, P, args.k, seed=0)  # noqa: E731
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    base = _status("VmRSS")
    t0 = time.perf_counter()
    picks = run()
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "added": _status("VmHWM") - base,
                      "picks": [int(i) for i in picks]}))


def run_method(method, data, probs, n, k, timeout):
    if method == "scikit-activeml":
        cmd = [PEERS_PYTHON, "-c", PEER_CODE, data, probs, str(k), str(n)]
    else:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", method, "--data", data,
               "--probs", probs, "--n", str(n), "--k", str(k)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout > {timeout:.0f} s"}
    except OSError as exc:  # e.g. no peers virtualenv: a row saying so, not a traceback
        return {"error": f"cannot run {cmd[0]}: {exc.strerror}"}
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1][:80]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def suite_probs(label, X, labeled, seed=0):
    """Class probabilities for a suite input: a logistic regression fitted on the labeled
    rows (real data sets, their own labels), or a softmax of random logits (Gaussian)."""
    rng = np.random.default_rng(seed)
    if label == "Gaussian":
        logits = 2.0 * rng.standard_normal((X.shape[0], 10), dtype=np.float32)
    else:
        from sklearn.linear_model import LogisticRegression

        from fastal.datasets import load_fashion_mnist, load_rotten_tomatoes_tfidf

        if label.startswith("Fashion"):
            y = load_fashion_mnist(subset="train")[1]
        else:
            y = load_rotten_tomatoes_tfidf()[1]
        model = LogisticRegression(max_iter=300).fit(X[labeled], y[labeled])
        logits = model.decision_function(X).astype(np.float32)
        if logits.ndim == 1:
            logits = np.stack([-logits, logits], axis=1)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.ascontiguousarray(e / e.sum(axis=1, keepdims=True), dtype=np.float32)


def main_real(args):
    sys.path.insert(0, HERE)
    from _common import machine, table
    from bench_kcenter import REAL_KS, real_suite

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, X, labeled in real_suite(only=args.only):
            n, d = X.shape
            P = suite_probs(label, X, labeled)
            data, probs = os.path.join(tmp, "X.npy"), os.path.join(tmp, "P.npy")
            np.save(data, X)
            np.save(probs, P)
            explicit = n * P.shape[1] * d * 8  # scikit-activeml's float64 gradient embeddings
            for k in REAL_KS:
                res = {m: run_method(m, data, probs, n, k, args.timeout)
                       for m in ("fastal", "numpy")}
                if explicit <= args.peer_bytes:
                    res["scikit-activeml"] = run_method("scikit-activeml", data, probs, n, k,
                                                        args.peer_timeout)
                else:
                    res["scikit-activeml"] = {
                        "error": f"not run: N x Cd float64 gradients = {explicit / 2**30:.1f} "
                                 f"GiB > --peer-bytes"}
                fa = res["fastal"].get("seconds")
                for method, r in res.items():
                    if "error" in r:
                        rows.append([label, f"{n:,} x {d}, C={P.shape[1]}", k, method,
                                     r["error"], "", "", ""])
                    else:
                        rows.append([label, f"{n:,} x {d}, C={P.shape[1]}", k, method,
                                     f"{r['seconds']:.3f}", f"{n * k / r['seconds'] / 1e6:,.1f} M",
                                     f"{r['seconds'] / fa:.1f}x" if fa else "-",
                                     f"{r['added'] / 2**20:,.0f} MiB"])
                    print(rows[-1], file=sys.stderr, flush=True)
                rows.append([label, f"{n:,} x {d}, C={P.shape[1]}", k, "lightly-mundig",
                             "no BADGE", "", "", ""])
            del X, P
    print(f"\n`python bench/bench_badge.py --suite real` ({machine()})\n")
    print(table(["data", "N x d", "k", "method", "seconds", "row-picks/s",
                 "time / fastal", "peak memory beyond inputs"], rows))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    parser.add_argument("--suite", choices=["synthetic", "real"], default="synthetic")
    parser.add_argument("--only", default=None, help="--suite real: only these inputs")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=128)
    parser.add_argument("--c", type=int, default=10)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--numpy-k", type=int, default=100,
                        help="picks for the NumPy loop on the full pool (it is slow)")
    parser.add_argument("--peer-n", type=int, nargs="*", default=[20_000, 100_000],
                        help="pool sizes for scikit-activeml (it forms N x C*d float64)")
    parser.add_argument("--peer-k", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--peer-bytes", type=float, default=2 * 2**30,
                        help="--suite real: run scikit-activeml where its explicit gradient "
                             "embeddings (N x C d float64) take at most this many bytes")
    parser.add_argument("--peer-timeout", type=float, default=300.0,
                        help="--suite real: seconds before a scikit-activeml run is killed")
    parser.add_argument("--worker", choices=["fastal", "numpy"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--probs", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.suite == "real":
        return main_real(args)
    if args.quick:
        args.n, args.k, args.numpy_k, args.peer_n, args.peer_k = 100_000, 200, 50, [5_000,
                                                                                  20_000], 50
    sys.path.insert(0, HERE)
    from _common import machine, table

    X, P = make_data(args.n, args.d, args.c, seed=0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data, probs = os.path.join(tmp, "X.npy"), os.path.join(tmp, "P.npy")
        np.save(data, X)
        np.save(probs, P)
        del X, P
        cases = [("fastal", args.n, args.k), ("numpy", args.n, args.numpy_k)]
        for n in args.peer_n:
            cases += [("fastal", n, args.peer_k), ("numpy", n, args.peer_k),
                      ("scikit-activeml", n, args.peer_k)]
        fastal_rate = {}
        for method, n, k in cases:
            res = run_method(method, data, probs, n, k, args.timeout)
            if "error" in res:
                rows.append([method, f"{n:,}", k, res["error"], "", "", ""])
                print(rows[-1], file=sys.stderr)
                continue
            rate = n * k / res["seconds"]
            if method == "fastal":
                fastal_rate[n] = rate
            ratio = fastal_rate.get(n, np.nan) / rate
            rows.append([method, f"{n:,}", k, f"{res['seconds']:.3f}",
                         f"{rate / 1e6:,.1f} M", f"{ratio:.1f}x",
                         f"{res['added'] / 2**20:,.0f} MiB"])
            print(rows[-1], file=sys.stderr)
    cmd = "python bench/bench_badge.py" + (" --quick" if args.quick else "")
    print(f"\n`{cmd}` ({machine()})\n")
    print(f"Pool: d={args.d}, C={args.c}, float32 embeddings and probabilities.\n")
    print(table(["method", "N", "k", "seconds", "row-picks/s", "fastal speed-up",
                 "peak memory beyond inputs"], rows))


if __name__ == "__main__":
    main()
