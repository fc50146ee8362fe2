"""Side-by-side: fastal's committee scoring vs the NumPy formula vs peer libraries.

One run, one machine, the same float32 data for everyone. Prints markdown tables:

1. committee disagreement, M members x N rows x C classes (default 10 x 1,000,000 x 10):
   rows/s of fastal and of the plain vectorised NumPy formula for each measure, all six
   measures fused in one pass (with fused cost / most expensive single measure), and the
   peers' rows/s on the first --peer-rows rows (they are slow);
2. a linear head on embeddings (default 1,000,000 x 384 float32, C = 10): rows/s of
   ``score_model(LinearHead, X, "entropy")`` against the GEMM ``X @ W`` alone, measured in
   the same run, both whole and in the same chunks as the scorer.

    python bench/compare_committee.py            # full run (a few minutes)
    python bench/compare_committee.py --quick    # small sizes, a smoke test

Peers run in the interpreter named by --peers-python or $FASTAL_PEERS_PYTHON (see
bench/peers.py); without one they are skipped.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402
import peers  # noqa: E402

from fastal.committee import COMMITTEE_METHODS, score_committee  # noqa: E402
from fastal.models import LinearHead, score_model  # noqa: E402

#: Measures the peers implement (timed for fastal, NumPy and the peers).
MEASURES = ("vote_entropy", "consensus_entropy", "kl_max", "bald")
#: Every measure in the table: the last two have no peer, only the NumPy formula.
TABLE_MEASURES = MEASURES + ("variation_ratio", "consensus_margin")


def make_members(m, n, c, seed=0, block=1 << 18):
    """Softmax of Gaussian logits (shared row signal + member noise), float32, in blocks."""
    rng = np.random.default_rng(seed)
    out = np.empty((m, n, c), dtype=np.float32)
    for s in range(0, n, block):
        rows = min(block, n - s)
        shared = rng.standard_normal((rows, c), dtype=np.float32) * 2
        for k in range(m):
            z = shared + rng.standard_normal((rows, c), dtype=np.float32)
            z -= z.max(axis=1, keepdims=True)
            np.exp(z, out=z)
            z /= z.sum(axis=1, keepdims=True)
            out[k, s:s + rows] = z
    return out


def _entropy(p, axis=-1):
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(axis=axis)


def numpy_formula(method):
    """The obvious vectorised NumPy way of each measure, on (M, N, C)."""
    if method in ("vote_entropy", "variation_ratio"):
        def vote_fractions(p):
            m, n, c = p.shape
            votes = p.argmax(axis=2)
            counts = np.zeros((n, c), dtype=np.float32)
            rows = np.arange(n)
            for k in range(m):
                counts[rows, votes[k]] += 1  # rows are distinct within one member
            return counts / m
        if method == "variation_ratio":
            return lambda p: 1.0 - vote_fractions(p).max(axis=1)
        return lambda p: _entropy(vote_fractions(p))
    if method == "consensus_margin":
        def consensus_margin(p):
            top2 = np.partition(p.mean(axis=0), -2, axis=1)[:, -2:]
            return 1.0 - (top2[:, 1] - top2[:, 0])
        return consensus_margin
    if method == "consensus_entropy":
        return lambda p: _entropy(p.mean(axis=0))
    if method == "bald":
        return lambda p: _entropy(p.mean(axis=0)) - _entropy(p).mean(axis=0)
    if method == "kl_max":
        def kl_max(p):
            q = p.mean(axis=0)
            with np.errstate(divide="ignore", invalid="ignore"):
                terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
            return terms.sum(axis=2).max(axis=0)
        return kl_max
    raise ValueError(method)


def peer_rates(members, python, repeat):
    if not python:
        return {}, {}
    results, meta = peers.run_peers("committee", {"member_probs": members}, python=python,
                                    methods=MEASURES, repeat=repeat)
    rates, errors = {}, {}
    n = members.shape[1]
    for (library, method), r in results.items():
        if r.error is None and r.seconds:
            rates[(library, method)] = n / min(r.seconds)
        else:
            errors[(library, method)] = r.error
    for key, error in errors.items():
        print(f"peer {key} failed: {error}", file=sys.stderr)
    return rates, meta.get("versions", {})


def committee_table(m, n, c, peer_rows, python, repeat):
    members = make_members(m, n, c)
    score_committee(members[:, :2000], COMMITTEE_METHODS)  # compile / load the cache
    for method in TABLE_MEASURES:
        score_committee(members[:, :2000], method)
    rates, versions = peer_rates(members[:, :peer_rows], python, repeat=1)
    rows = []
    times = {}
    numpy_times = {}
    for method in TABLE_MEASURES:
        t_fastal = _common.best_of(lambda: score_committee(members, method), repeat=repeat)
        times[method] = t_fastal
        formula = numpy_formula(method)
        t_numpy = _common.best_of(lambda: formula(members), repeat=max(1, repeat - 1))
        numpy_times[method] = t_numpy
        peer = {lib: r for (lib, meth), r in rates.items() if meth == method}
        best = max(peer.items(), key=lambda kv: kv[1]) if peer else None
        rows.append([
            method, _common.fmt_rate(n / t_fastal), _common.fmt_rate(n / t_numpy),
            f"{t_numpy / t_fastal:.1f}x",
            ", ".join(f"{lib} {r / 1e3:,.0f} k" for lib, r in sorted(peer.items())) or "-",
            f"{n / t_fastal / best[1]:,.0f}x ({best[0]})" if best else "-",
        ])
        print(" | ".join(map(str, rows[-1])), file=sys.stderr)
    t_fused = _common.best_of(lambda: score_committee(members, COMMITTEE_METHODS), repeat=repeat)
    worst = max(times, key=times.get)
    numpy_all = sum(numpy_times.values())
    rows.append([
        f"all {len(COMMITTEE_METHODS)} fused (one pass)", _common.fmt_rate(n / t_fused),
        f"{_common.fmt_rate(n / numpy_all)} ({len(numpy_times)} formulas in sequence)",
        f"{numpy_all / t_fused:.1f}x",
        "-", f"fused / most expensive single ({worst}) = {t_fused / times[worst]:.2f}",
    ])
    headers = ["measure", "fastal rows/s", "NumPy rows/s", "fastal / NumPy",
               f"peers rows/s (at {peer_rows:,} rows)", "fastal / fastest peer"]
    size = f"M = {m}, N = {n:,}, C = {c}, float32 probabilities ({members.nbytes / 1e6:,.0f} MB)"
    return size, _common.table(headers, rows), versions


def linear_head_table(n, d, c, repeat):
    rng = np.random.default_rng(1)
    X = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, 1 << 17):
        X[s:s + (1 << 17)] = rng.standard_normal((min(1 << 17, n - s), d), dtype=np.float32)
    W = (rng.standard_normal((d, c)) / np.sqrt(d)).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    head = LinearHead(W, b)
    W32 = head._weights(np.dtype(np.float32))[0]
    score_model(head, X[:5000], "entropy")
    score_model(head, X[:5000], ("entropy", "margin", "expected_gradient_length"))
    from fastal._config import CHUNK_BYTES, MIN_CHUNK_ROWS
    chunk_rows = max(MIN_CHUNK_ROWS, 4 * CHUNK_BYTES // (d * 4))  # score_model's default
    buffer = np.empty((chunk_rows, c), dtype=np.float32)

    def gemm_chunked():
        for lo in range(0, n, chunk_rows):
            hi = min(n, lo + chunk_rows)
            np.matmul(X[lo:hi], W32, out=buffer[:hi - lo])

    t_gemm = _common.best_of(lambda: X @ W32, repeat=repeat)
    t_gemm_chunked = _common.best_of(gemm_chunked, repeat=repeat)
    t_entropy = _common.best_of(lambda: score_model(head, X, "entropy"), repeat=repeat)
    t_three = _common.best_of(
        lambda: score_model(head, X, ("entropy", "margin", "expected_gradient_length")),
        repeat=repeat)
    rows = [
        ["GEMM alone, X @ W in one call", _common.fmt_rate(n / t_gemm), "1.00"],
        [f"GEMM alone, in {chunk_rows:,}-row chunks", _common.fmt_rate(n / t_gemm_chunked),
         f"{t_gemm_chunked / t_gemm:.2f}"],
        ["score_model(LinearHead, X, 'entropy')", _common.fmt_rate(n / t_entropy),
         f"{t_entropy / t_gemm:.2f}"],
        ["score_model(..., ('entropy', 'margin', 'expected_gradient_length'))",
         _common.fmt_rate(n / t_three), f"{t_three / t_gemm:.2f}"],
    ]
    size = f"N = {n:,}, d = {d}, C = {c}, float32 embeddings ({X.nbytes / 1e9:.2f} GB)"
    return size, _common.table(["what", "rows/s", "time / one-call GEMM"], rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    parser.add_argument("--peers-python", default=os.environ.get(peers.PEERS_PYTHON_ENV),
                        help="interpreter of the peer environment (default $%s)"
                        % peers.PEERS_PYTHON_ENV)
    parser.add_argument("--no-peers", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        m, n, c, peer_rows, n_embed, repeat = 10, 100_000, 10, 5_000, 100_000, 2
    else:
        m, n, c, peer_rows, n_embed, repeat = 10, 1_000_000, 10, 100_000, 1_000_000, 3
    python = None if args.no_peers else args.peers_python
    print("# fastal committee scoring vs NumPy vs peers\n")
    print(f"Machine: {_common.machine()}\n")
    print("Command: `python bench/compare_committee.py" + (" --quick" if args.quick else "")
          + (f" --peers-python {python}" if python else "") + "`\n")
    t0 = time.perf_counter()
    size, table, versions = committee_table(m, n, c, peer_rows, python, repeat)
    print(f"## Committee disagreement ({size})\n")
    print(table)
    if versions:
        print("\nPeers: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v))
    elif not python:
        print("\nPeers skipped (no --peers-python / $FASTAL_PEERS_PYTHON).")
    size, table = linear_head_table(n_embed, 384, 10, repeat)
    print(f"\n## Linear head on embeddings ({size})\n")
    print(table)
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
