"""Check that every peer adapter in bench/peers.py computes what fastal computes.

A benchmark ratio means nothing if the two sides compute different numbers. This script
runs each adapter on small random inputs and compares it with the plain NumPy formula
(float64) for fastal's convention, printing the largest absolute difference. Two inputs
per measure: "dense" (every probability > 0) and "zeros" (a third of the rows one-hot, or
members that put zero mass on some classes), where peers that add an epsilon inside the
logarithm or clip the probabilities drift from the exact value. k-center adapters are
compared with a NumPy greedy farthest-point selection: same picks in the same order.

Run it where the peers are installed, or from the project environment with
FASTAL_PEERS_PYTHON pointing at the peer environment's interpreter (the adapters then run
there, through ``peers.run_peers``)::

    /work/peers-venv/bin/python bench/check_peers.py
    FASTAL_PEERS_PYTHON=/work/peers-venv/bin/python python bench/check_peers.py

Exit status 1 when an adapter's difference exceeds its tolerance or it raised, 2 when no
peer can be reached.
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402  (beside this file, not a package)

# float32 inputs: differences up to a few 1e-6 are rounding; epsilon-based peers are
# allowed 1e-4 on inputs with zeros (their eps * log(eps) terms), and are flagged above.
TOLERANCE = 1e-5
TOLERANCE_WITH_ZEROS = 1e-4


# --------------------------------------------------------------------------- references


def _xlogx(p):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)


def entropy(probs):
    return -_xlogx(np.asarray(probs, np.float64)).sum(axis=-1)


def least_confidence(probs):
    return 1.0 - np.asarray(probs, np.float64).max(axis=1)


def _top_two(probs):
    ordered = np.sort(np.asarray(probs, np.float64), axis=1)
    return ordered[:, -1], ordered[:, -2]


def margin(probs):
    first, second = _top_two(probs)
    return 1.0 - (first - second)


def ratio(probs):
    first, second = _top_two(probs)
    return second / first


def vote_entropy(member_probs):
    n_members, _, n_classes = member_probs.shape
    votes = np.argmax(member_probs, axis=2)  # (M, N), first maximum on ties
    counts = np.stack([(votes == c).sum(axis=0) for c in range(n_classes)], axis=1)
    return entropy(counts / n_members)


def consensus_entropy(member_probs):
    return entropy(np.asarray(member_probs, np.float64).mean(axis=0))


def _kl_to_mean(member_probs):
    p = np.asarray(member_probs, np.float64)
    mean = p.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / mean), 0.0)
    return terms.sum(axis=2)  # (M, N)


def kl_max(member_probs):
    return _kl_to_mean(member_probs).max(axis=0)


def bald(member_probs):
    p = np.asarray(member_probs, np.float64)
    return entropy(p.mean(axis=0)) - entropy(p).mean(axis=0)


REFERENCES = {
    "entropy": entropy, "least_confidence": least_confidence, "margin": margin,
    "ratio": ratio, "vote_entropy": vote_entropy, "consensus_entropy": consensus_entropy,
    "kl_max": kl_max, "bald": bald,
}


def kcenter(pool, labeled, k):
    """Greedy farthest-point picks from pool, starting from labeled (lowest index on ties)."""
    pool = np.asarray(pool, np.float64)
    labeled = np.asarray(labeled, np.float64)
    nearest = ((pool[:, None, :] - labeled[None, :, :]) ** 2).sum(axis=2).min(axis=1)
    picks = []
    for _ in range(k):
        pick = int(np.argmax(nearest))
        picks.append(pick)
        nearest = np.minimum(nearest, ((pool - pool[pick]) ** 2).sum(axis=1))
    return np.array(picks)


# --------------------------------------------------------------------------- inputs


def _normalise(p):
    p = p.astype(np.float32)
    return p / p.sum(axis=-1, keepdims=True)


def probability_inputs(rng, n_rows=400, n_classes=7):
    dense = _normalise(rng.dirichlet(np.full(n_classes, 0.6), size=n_rows))
    zeros = dense.copy()
    one_hot = rng.choice(n_rows, n_rows // 3, replace=False)
    zeros[one_hot] = np.eye(n_classes, dtype=np.float32)[rng.integers(n_classes,
                                                                        size=one_hot.size)]
    return {"dense": dense, "zeros": zeros}


def committee_inputs(rng, n_members=5, n_rows=300, n_classes=4):
    dense = _normalise(rng.dirichlet(np.full(n_classes, 0.6), size=(n_members, n_rows)))
    zeros = dense.copy()
    zeros[rng.random(zeros.shape) < 0.25] = 0.0
    zeros[..., 0] += (zeros.sum(axis=-1) == 0)  # keep every member row a distribution
    return {"dense": dense, "zeros": _normalise(zeros)}


def kcenter_inputs(rng, n_pool=1500, n_labeled=10, dim=12, k=25):
    return {"pool": rng.standard_normal((n_pool, dim)).astype(np.float32),
            "labeled": rng.standard_normal((n_labeled, dim)).astype(np.float32), "k": k}

# --------------------------------------------------------------------------- running


def _run(kind, arrays):
    """Adapter outputs, in process if peers import here, else in FASTAL_PEERS_PYTHON."""
    if os.environ.get(peers.PEERS_PYTHON_ENV) and not any(peers.peer_versions().values()):
        results, _ = peers.run_peers(kind, arrays)
    else:
        results = peers.run_here(kind, arrays)
    return results


def _versions():
    python = os.environ.get(peers.PEERS_PYTHON_ENV)
    if python and not any(peers.peer_versions().values()):
        import json
        import subprocess
        shown = subprocess.run([python, peers.__file__, "--json"], check=True,
                               capture_output=True, text=True).stdout
        return json.loads(shown)["peers"]
    return peers.peer_versions()


def _difference(output, expected):
    if output is None or output.shape != expected.shape:
        return np.inf
    return float(np.max(np.abs(output.astype(np.float64) - expected)))


def check_scores(kind, inputs, failures):
    name = "probs" if kind == "uncertainty" else "member_probs"
    by_case = {case: _run(kind, {name: data}) for case, data in inputs.items()}
    keys = sorted(set().union(*[r.keys() for r in by_case.values()]),
                  key=lambda key: (key[1], key[0]))
    for library, method in keys:
        cells = []
        for case, data in inputs.items():
            result = by_case[case].get((library, method))
            if result is None or result.error:
                cells.append(f"{'ERROR':>10}")
                failures.append(f"{library} {method} [{case}]: "
                                f"{result.error if result else 'missing'}")
                continue
            diff = _difference(result.output, REFERENCES[method](data))
            cells.append(f"{diff:10.2e}")
            limit = TOLERANCE if case == "dense" else TOLERANCE_WITH_ZEROS
            if not diff <= limit:
                failures.append(f"{library} {method} [{case}]: max |diff| {diff:.3g}")
        result = next(r[(library, method)] for r in by_case.values() if (library, method) in r)
        print(f"{method:<18} {library:<41} {' '.join(cells)}   {result.transform}")
    return {method for _, method in keys}


def check_kcenter(arrays, failures):
    expected = kcenter(arrays["pool"], arrays["labeled"], arrays["k"])
    for (library, _), result in sorted(_run("kcenter", arrays).items()):
        if result.error:
            print(f"{'kcenter':<18} {library:<41} ERROR {result.error}")
            failures.append(f"{library} kcenter: {result.error}")
            continue
        picks = result.output
        same_order = picks.shape == expected.shape and bool(np.all(picks == expected))
        same_set = set(picks.tolist()) == set(expected.tolist())
        agree = int(np.sum(picks[:len(expected)] == expected[:len(picks)]))
        print(f"{'kcenter':<18} {library:<41} {agree:>3}/{len(expected)} picks in order, "
              f"same set: {same_set}   {result.transform}")
        if not same_order:
            failures.append(f"{library} kcenter: picks differ from the NumPy greedy order")


def main():
    rng = np.random.default_rng(20240611)
    versions = _versions()
    if not any(versions.values()):
        print("no peer importable here: run with the peer environment's python, or set "
              f"{peers.PEERS_PYTHON_ENV} to it (see bench/peers.py)")
        return 2
    print("peers:", ", ".join(f"{name} {version}" for name, version in versions.items()
                              if version))
    failures = []
    header = f"{'method':<18} {'library':<41} {'dense':>10} {'zeros':>10}   transform to fastal"
    print("\nmax |adapter - NumPy formula| (float64 reference on float32 inputs)")
    print(header)
    covered = check_scores("uncertainty", probability_inputs(rng), failures)
    print()
    print(header)
    covered |= check_scores("committee", committee_inputs(rng), failures)
    print("\nk-center picks against the NumPy greedy farthest-point order")
    check_kcenter(kcenter_inputs(rng), failures)
    missing = [m for m in peers.UNCERTAINTY_METHODS + peers.COMMITTEE_METHODS
               if covered and m not in covered]
    if missing:
        print("\nno peer exposes:", ", ".join(missing))
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        return 1
    print("\nall adapters agree with the NumPy formulas within tolerance")
    return 0


if __name__ == "__main__":
    sys.exit(main())
