"""Exact greedy k-center: fastal vs the plain NumPy incremental loop, on the same data.

Each method runs in its own subprocess on the same ``.npy`` file, so that its peak resident
memory can be measured: ``VmHWM - VmRSS`` after loading the data, a warm-up on a small pool
of the same dimension (JIT cache, FAISS/Numba threads, the BLAS packing buffers sized by d)
and ``malloc_trim(0)`` (freed heap memory returned, so that the measured call cannot reuse
pages the warm-up touched), with the high-water mark reset through ``/proc/self/clear_refs``.

The NumPy loop is what one writes by hand: one FAISS flat search for the initial distance
to the labeled set, then per pick one float32 mat-vec ``|x|^2 + |c|^2 - 2 X c`` and an
``np.minimum``. Its float32 distances carry cancellation error, so its picks can drift from
the exact greedy order; the table reports whether the two pick lists are identical and, if
not, the first pick at which they differ.

Peers run in their own environment (``bench/peers.py``, ``--peers-python``), in the same
run, on the same data:

- lightly-mundig (Rust) on the full case, killed after ``--peer-cap`` seconds ("> cap").
- scikit-activeml ``k_greedy_center`` (a (k, N + L) float64 matrix), small-text
  ``greedy_coreset`` and ALiPy coreset are quadratic in time or memory; they run on the
  first ``--small-rows`` pool rows with ``k = --small-k`` (fastal and the NumPy loop run on
  that small case too), each capped at ``--peer-cap`` seconds. Throughput is reported as
  rows x picks per second, so the full and small runs can be compared.

"picks identical": for fastal and the NumPy loop, against the exact float64 reference
order (fastal's, checked by the tests); for peers, the same picks as fastal, yes/no. Peers
use float32 or their own distance formulas and break exact ties their own way, so "no" can
be legitimate.

    python bench/bench_kcenter.py            # full table (tens of minutes, ~3 GB RAM)
    python bench/bench_kcenter.py --quick    # small sizes
    python bench/bench_kcenter.py --suite real   # issue 13: real and unstructured data

``--suite real`` runs the inputs users bring instead of blobs: Fashion-MNIST (PCA-50 and raw
784-d pixels), Rotten Tomatoes (TF-IDF -> TruncatedSVD-256) and unstructured Gaussian data
(300,000 x 128, 1,000,000 x 32 and x 128), 1,000 labeled rows, k = 100 and 1,000. There,
"fastal (groups only)" is the triangle-inequality path alone (fastal before the lazy path,
also exact): its picks must equal fastal's.
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


REAL_KS = (100, 1000)
REAL_LABELED = 1000


def real_suite(seed=0, only=None, n_labeled=REAL_LABELED, with_labels=False):
    """``(label, X float32, labeled positions)`` of the issue-13 inputs, one at a time
    (``with_labels``: ``(label, X, labeled, y)``, ``y`` the class labels, None for the
    Gaussian pools); ``only``: the labels that contain this text (e.g. "Gaussian");
    ``n_labeled`` 0: no labeled set (a first round)."""
    for label, X, labeled, y in _real_suite(seed, n_labeled):
        if only is None or only.lower() in f"{label} {X.shape[0]}x{X.shape[1]}".lower():
            yield (label, X, labeled, y) if with_labels else (label, X, labeled)


def _real_suite(seed, n_labeled):
    from fastal.datasets import load_fashion_mnist, load_rotten_tomatoes_tfidf

    def labeled_of(n):
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(n, n_labeled, replace=False)).astype(np.int64)

    X, y = load_fashion_mnist(subset="train")
    X = np.ascontiguousarray(X, dtype=np.float32)
    from sklearn.decomposition import PCA, TruncatedSVD

    Z = np.ascontiguousarray(PCA(50, random_state=0).fit_transform(X), dtype=np.float32)
    yield "Fashion-MNIST PCA-50", Z, labeled_of(Z.shape[0]), y
    del Z
    yield "Fashion-MNIST raw 784-d", X, labeled_of(X.shape[0]), y
    del X
    T, y = load_rotten_tomatoes_tfidf()
    T = np.ascontiguousarray(TruncatedSVD(256, random_state=0).fit_transform(T),
                             dtype=np.float32)
    yield "Rotten Tomatoes TF-IDF SVD-256", T, labeled_of(T.shape[0]), y
    del T
    for n, d in ((300_000, 128), (1_000_000, 32), (1_000_000, 128)):
        G, labeled = make_data(n, d, n_labeled, "gaussian", seed)
        yield "Gaussian", G, labeled, None
        del G


def numpy_loop(X, k, labeled, weights=None):
    """Plain incremental greedy: FAISS initial search + one float32 mat-vec per pick.
    Without a labeled set the first pick is fastal's (seed 0). ``weights``: each pick is
    the argmax of ``weights * distance`` (the distance's square root taken per pick)."""
    import faiss

    n, d = X.shape
    mind = np.full(n, np.inf, dtype=np.float32)  # squared distances (same argmax)
    if labeled.size:
        index = faiss.IndexFlatL2(d)
        index.add(np.ascontiguousarray(X[labeled]))
        for start in range(0, n, 65536):
            dist, _ = index.search(X[start:start + 65536], 1)
            mind[start:start + 65536] = dist[:, 0]
        mind[labeled] = -np.inf
    sq_norms = np.einsum("ij,ij->i", X, X)
    picks = np.empty(k, dtype=np.int64)
    for t in range(k):
        if weights is not None and (labeled.size or t):
            score = np.sqrt(np.maximum(mind, 0.0))
            score *= weights
            score[mind < 0] = -1.0  # centres
            i = int(np.argmax(score))
        else:
            i = int(np.argmax(mind)) if labeled.size or t else int(
                np.random.default_rng(0).integers(n))
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


def _warm_up(method, d, weighted=False):
    """Run ``method`` on a small pool of the case's dimension, through every code path.

    This loads the JIT cache and starts FAISS's and Numba's threads, and it touches the BLAS
    library's packing buffers, which are sized by ``d`` and kept for the life of the process
    (about 1.6 MB at d = 384): a one-time cost of any FAISS search, not of the call measured.
    """
    import importlib

    module = importlib.import_module("fastal.diversity.kcenter")
    small = np.random.default_rng(0).standard_normal((4000, d), dtype=np.float32)
    if method == "numpy":
        numpy_loop(small, 20, np.arange(64), np.ones(4000) if weighted else None)
        return
    if weighted:
        w = np.random.default_rng(1).random(4000)
        for path in ("grouped", "lazy", "small"):
            for labeled in (np.arange(64), None, np.arange(0, 4000, 20)):
                module._kcenter(small, 20, labeled=labeled, path=path, weights=w)
        module._kcenter(small, 20, path="scan", weights=w)  # float32 scans, weighted
        return
    level_bytes = module._LEVEL_ROW_BYTES
    try:
        for centre_bytes in (level_bytes, 0):  # int16 and row group centres
            module._LEVEL_ROW_BYTES = centre_bytes
            for path in ("grouped", "lazy"):
                module._kcenter(small, 20, labeled=np.arange(64), path=path)  # labeled cells
                module._kcenter(small, 20, path=path)  # random cells, no labeled set
                module._kcenter(small, 20, labeled=np.arange(8), path=path)  # random cells
                module._kcenter(small, 200, labeled=np.arange(0, 4000, 20), path=path)
        module._kcenter(small, 20, path="scan")  # float32 scans (no labels, lazy given up)
    finally:
        module._LEVEL_ROW_BYTES = level_bytes


def uncertainty_weights(X, y, labeled, seed):
    """``(weights, source)`` for ``--weighted``: the predictive entropy of a logistic
    regression fitted on the labeled rows (what ``weighted_kcenter`` multiplies the
    distances by), or uniform random weights when there are no labels to fit."""
    if y is None or labeled.size == 0:
        return np.random.default_rng(seed).random(X.shape[0]), "uniform random"
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=300).fit(X[labeled], np.asarray(y)[labeled])
    p = model.predict_proba(X)
    return -(p * np.log(np.clip(p, 1e-12, 1.0))).sum(axis=1), "entropy"


def _release_free_heap():
    """Return freed heap memory to the system (glibc), so that the measured call cannot
    reuse memory that the warm-up touched and freed without it being counted."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def worker(args):
    """Run one method in this process; print a JSON line with time, memory and picks file."""
    import faiss  # noqa: F401  (warm-up below loads it)

    from fastal.diversity.kcenter import _kcenter

    X = np.load(args.data)
    labeled = np.load(args.labeled)
    weights = np.load(args.weights) if args.weights else None
    _warm_up(args.worker, X.shape[1], weights is not None)
    _release_free_heap()
    base = _status("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    stats = {}
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        if args.worker in ("fastal", "fastal-grouped"):
            path = "grouped" if args.worker == "fastal-grouped" else None
            picks = _kcenter(X, args.k, labeled=labeled if labeled.size else None, stats=stats,
                             path=path, weights=weights).indices
        else:
            picks = numpy_loop(X, args.k, labeled, weights)
        times.append(time.perf_counter() - t0)
        if len(times) == 1:
            peak = _status("VmHWM")  # the first call: later calls reuse freed memory
    elapsed = min(times)
    np.save(args.out, picks)
    print(json.dumps({"time": elapsed, "added": peak - base, "stats": stats}))


def run_method(method, data, labeled, k, out, repeat=1, weights=None):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", method, "--data", data,
           "--labeled", labeled, "--k", str(k), "--out", out, "--repeat", str(repeat)]
    if weights:
        cmd += ["--weights", weights]
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


PEER_FULL = ("lightly-mundig",)
PEER_SMALL = ("scikit-activeml", "small-text", "ALiPy")


def run_peer(library, X, labeled, k, python, cap):
    """(seconds or None, picks or None, note) of one peer, in the peer environment."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from peers import run_peers

    arrays = {"pool": X, "labeled": X[labeled], "k": k}
    try:
        results, _ = run_peers("kcenter", arrays, python=python, libraries=[library],
                               timeout=cap)
    except subprocess.TimeoutExpired:
        return None, None, f"> {cap:.0f} s"
    except subprocess.CalledProcessError as error:
        return None, None, f"failed ({error.returncode})"
    if not results:
        return None, None, "not installed"
    result = next(iter(results.values()))
    if result.error:
        return None, None, result.error.split(":")[0]
    return min(result.seconds), np.asarray(result.output), ""


def _same(a, b):
    if a is None or b is None:
        return "-"
    if np.array_equal(a, b):
        return "yes"
    diff = np.flatnonzero(np.asarray(a)[:len(b)] != np.asarray(b)[:len(a)])
    first = int(diff[0]) if diff.size else min(len(a), len(b))
    return f"no (from pick {first})"


def _row(name, n, d, n_labeled, k, seconds, note, added, same, reference_seconds, data=""):
    if seconds is None:
        timing, ratio, rate = note, "-", "-"
    else:
        timing = f"{seconds:.2f}"
        ratio = f"{seconds / reference_seconds:.1f}x" if reference_seconds else "-"
        rate = f"{n * k / seconds:.2e}"
    memory = "-" if added is None else f"{added / 2**20:.0f} ({added / n:.1f})"
    label = f"{data} " if data else ""
    return (f"| {label}{n:,} x {d}, L={n_labeled:,}, k={k:,} | {name} | {timing} | {ratio} "
            f"| {rate} | {memory} | {same} |")


def _phases(st):
    if st.get("path") == "lazy":
        radii = (f", radii band {st['radius_band_rows']:,} rows" if "radius_band_rows" in st
                 else "")
        return (f"lazy: band {st['band_rows']:,} rows ({st['band_widenings']} widenings)"
                f"{radii}, {st['row_evaluations']:,} row-to-pick distances")
    if st.get("path") == "scan":
        if st.get("precision") in ("float16", "float32"):
            image = "a half image" if st["precision"] == "float16" else "float32"
            return (f"float32 scans ({image}) after the lazy path gave up at pick "
                    f"{st.get('lazy_picks_done', '-')}; {st['exact_candidates']:,} float64 "
                    "rechecks")
        why = (f"groups given up after {st['groups_abandoned_at']} picks"
               if "groups_abandoned_at" in st else
               f"the groups' skip share on a sample: {1 - st['sampled_eval_share']:.4f}")
        return f"float64 scans ({why})"
    if st.get("path") == "small":
        why = ("the lazy path's radii band gave up" if "lazy_radius_band_abandoned" in st
               else f"the lazy path gave up after {st['lazy_picks_done']} picks"
               if "lazy_band_abandoned" in st else "a small job")
        return f"float64 full scans ({why}); {st['row_evaluations']:,} row distances"
    note = (f"{st['grouping']} groups G={st['n_groups']:,}; {st['row_evaluations']:,} row "
            "distances")
    if "sampled_eval_share" in st:
        note = f"skip share on a sample {1 - st['sampled_eval_share']:.3f}, " + note
    if "lazy_band_abandoned" in st:
        note = (f"lazy given up after {st['lazy_picks_done']} picks (band projected to "
                f"{st['lazy_band_projected']:,} rows), then " + note)
    return note


def main_real(args, peers_python):
    """``--suite real``: the issue-13 inputs, every method on the same file, one run."""
    import numba

    print(f"command: python bench/bench_kcenter.py {' '.join(sys.argv[1:])}")
    print(f"float32, {args.n_labeled:,} labeled = random pool positions (seed {args.seed}); "
          f"numba threads: {numba.get_num_threads()}, cpus: {os.cpu_count()}; best of "
          f"{args.repeat}; lightly-mundig capped at {args.peer_cap:.0f} s\n")
    print("| case | method | seconds | time / fastal | rows x picks / s "
          "| added MB (B/row) | picks identical |")
    print("|---|---|---|---|---|---|---|")
    notes = []
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, X, labeled, y in real_suite(args.seed, args.only, args.n_labeled,
                                               with_labels=True):
            n, d = X.shape
            data, labf = os.path.join(tmp, "X.npy"), os.path.join(tmp, "labeled.npy")
            np.save(data, X)
            np.save(labf, labeled)
            weights = None
            if args.weighted:
                weights = os.path.join(tmp, "weights.npy")
                w, source = uncertainty_weights(X, y, labeled, args.seed)
                np.save(weights, w)
                label = f"{label} (weights: {source})"
            for k in REAL_KS:
                res, picks = {}, {}
                for method in ("fastal", "fastal-grouped", "numpy"):
                    out = os.path.join(tmp, f"{method}.npy")
                    res[method] = run_method(method, data, labf, k, out, args.repeat, weights)
                    picks[method] = np.load(out)
                fa = res["fastal"]["time"]
                print(_row("fastal", n, d, labeled.size, k, fa, "", res["fastal"]["added"],
                           "yes (reference order)", fa, label), flush=True)
                gr = res["fastal-grouped"]
                print(_row("fastal (groups only)", n, d, labeled.size, k, gr["time"], "",
                           gr["added"], _same(picks["fastal-grouped"], picks["fastal"]), fa,
                           label), flush=True)
                nu = res["numpy"]
                print(_row("NumPy loop (FAISS + float32 mat-vec)", n, d, labeled.size, k,
                           nu["time"], "", nu["added"], _same(picks["numpy"], picks["fastal"]),
                           fa, label), flush=True)
                peer = None
                if peers_python and not args.weighted:
                    peer, peer_picks, note = run_peer("lightly-mundig", X, labeled, k,
                                                      peers_python, args.peer_cap)
                    print(_row("lightly-mundig", n, d, labeled.size, k, peer, note, None,
                               _same(peer_picks, picks["fastal"]), fa, label), flush=True)
                notes.append(f"- {label} {n:,} x {d}, k={k:,}: "
                             + ", ".join(f"{name} {sec:.2f}" for name, sec in
                                         res["fastal"]["stats"]["seconds"].items())
                             + f"; {_phases(res['fastal']['stats'])}")
                summary.append((label, n, d, k, fa, nu["time"], gr["time"], peer,
                                res["fastal"]["added"] / n,
                                np.array_equal(picks["numpy"], picks["fastal"]),
                                np.array_equal(picks["fastal-grouped"], picks["fastal"])))
            del X
    print("\nfastal phases (s):")
    print("\n".join(notes))
    print("\nsummary: | data | N x d | k | fastal s | vs NumPy loop | vs groups only "
          "| vs lightly-mundig | added B/row | same picks as loop / groups |")
    for label, n, d, k, fa, nu, gr, peer, bpr, same_loop, same_groups in summary:
        peer_ratio = f"{peer / fa:.1f}x" if peer else "-"
        print(f"| {label} | {n:,} x {d} | {k:,} | {fa:.2f} | {nu / fa:.1f}x | {gr / fa:.1f}x "
              f"| {peer_ratio} | {bpr:.1f} | {'yes' if same_loop else 'no'} / "
              f"{'yes' if same_groups else 'no'} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--suite", choices=["blobs", "real"], default="blobs",
                        help="'real': Fashion-MNIST, Rotten Tomatoes, unstructured Gaussian")
    parser.add_argument("--only", default=None,
                        help="--suite real: only inputs whose label contains this text")
    parser.add_argument("--data-kind", choices=["blobs", "gaussian"], default="blobs")
    parser.add_argument("--cases", default=None,
                        help="semicolon-separated N,d,L,k cases, e.g. '100000,64,100,500'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-labeled", type=int, default=REAL_LABELED,
                        help="--suite real: labeled pool rows (0: none, a first round)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="calls per method; the best time is reported")
    parser.add_argument("--peers-python", default=os.environ.get("FASTAL_PEERS_PYTHON",
                                                                "/work/peers-venv/bin/python"),
                        help="interpreter of the peer environment ('' to skip peers)")
    parser.add_argument("--peer-cap", type=float, default=300.0,
                        help="seconds before a peer run is killed")
    parser.add_argument("--small-cap", type=float, default=120.0,
                        help="seconds before a quadratic peer run (small case) is killed")
    parser.add_argument("--small-rows", type=int, default=20_000)
    parser.add_argument("--small-k", type=int, default=100)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--labeled", help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    parser.add_argument("--weighted", action="store_true",
                        help="--suite real: weighted k-center (the weighted_kcenter "
                             "strategy): weights = the entropy of a logistic regression "
                             "fitted on the labeled rows (Fashion-MNIST, Rotten Tomatoes); "
                             "uniform random in [0, 1) for the Gaussian pools or without "
                             "labels; no peer takes weights")
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return
    if args.cases:
        cases = [tuple(int(v) for v in c.split(",")) for c in args.cases.split(";")]
    else:
        cases = QUICK_CASES if args.quick else FULL_CASES
    peers_python = args.peers_python if args.peers_python and os.path.exists(
        args.peers_python) else None

    if args.suite == "real":
        main_real(args, peers_python)
        return

    import numba

    print(f"command: python bench/bench_kcenter.py {' '.join(sys.argv[1:])}")
    print(f"data: {args.data_kind}, float32, labeled = random pool positions; "
          f"numba threads: {numba.get_num_threads()}, cpus: {os.cpu_count()}; "
          f"best of {args.repeat}; peers capped at {args.peer_cap:.0f} s (full) and "
          f"{args.small_cap:.0f} s (small: first {args.small_rows:,} rows, "
          f"k = {args.small_k})\n")
    print("| case | method | seconds | time / fastal | rows x picks / s "
          "| added MB (B/row) | picks identical |")
    print("|---|---|---|---|---|---|---|")
    phases = []
    small_done = set()
    with tempfile.TemporaryDirectory() as tmp:
        for n, d, n_labeled, k in cases:
            X, labeled = make_data(n, d, n_labeled, args.data_kind, args.seed)
            small_n = min(n, args.small_rows)
            small_k = min(k, args.small_k)
            small_labeled = labeled[labeled < small_n]
            if small_labeled.size == 0 and small_n:
                small_labeled = labeled[:1] % small_n
            for scale, (nn, kk, lab) in (("full", (n, k, labeled)),
                                        ("small", (small_n, small_k, small_labeled))):
                if scale == "small" and (not peers_python or not nn or (nn, kk) == (n, k)
                                         or (nn, d, lab.size, kk) in small_done):
                    continue
                if scale == "small":
                    small_done.add((nn, d, lab.size, kk))
                Xs = X[:nn]
                data, labf = os.path.join(tmp, "X.npy"), os.path.join(tmp, "labeled.npy")
                np.save(data, Xs)
                np.save(labf, lab)
                res, picks = {}, {}
                for method in ("fastal", "fastal-grouped", "numpy"):
                    out = os.path.join(tmp, f"{method}.npy")
                    res[method] = run_method(method, data, labf, kk, out, args.repeat)
                    picks[method] = np.load(out)
                fa = res["fastal"]
                print(_row("fastal", nn, d, lab.size, kk, fa["time"], "", fa["added"],
                           "yes (reference order)", fa["time"]), flush=True)
                gr = res["fastal-grouped"]
                print(_row("fastal (groups only)", nn, d, lab.size, kk, gr["time"], "",
                           gr["added"], _same(picks["fastal-grouped"], picks["fastal"]),
                           fa["time"]), flush=True)
                nu = res["numpy"]
                print(_row("NumPy loop (FAISS + float32 mat-vec)", nn, d, lab.size, kk,
                           nu["time"], "", nu["added"], _same(picks["numpy"], picks["fastal"]),
                           fa["time"]), flush=True)
                if scale == "full":
                    st = fa["stats"]
                    phases.append((nn, d, lab.size, kk, st))
                for library in (PEER_FULL if scale == "full" else PEER_SMALL):
                    if not peers_python:
                        continue
                    cap = args.peer_cap if scale == "full" else args.small_cap
                    seconds, peer_picks, note = run_peer(library, Xs, lab, kk, peers_python, cap)
                    print(_row(library, nn, d, lab.size, kk, seconds, note, None,
                               _same(peer_picks, picks["fastal"]), fa["time"]), flush=True)
            del X
    print("\nfastal phases (s) and work:")
    for n, d, n_labeled, k, st in phases:
        print(f"- N={n:,} d={d} L={n_labeled:,} k={k:,}: "
              + ", ".join(f"{name} {sec:.2f}" for name, sec in st["seconds"].items())
              + f"; {_phases(st)}")


if __name__ == "__main__":
    main()
