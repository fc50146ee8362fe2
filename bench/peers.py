"""Adapters that run peer active-learning libraries on fastal's inputs.

The benchmarks put fastal beside the NumPy formula and beside the libraries people already
use. This module turns each peer's own scoring function into one call signature, so a
benchmark times and checks every library on the same arrays:

- ``uncertainty_peers()``: ``f(probs (N, C) float32) -> scores (N,)``
- ``committee_peers()``: ``f(member_probs (M, N, C) float32) -> scores (N,)``
- ``kcenter_peers()``: ``f(pool (N, d) float32, labeled (L, d) float32, k) -> pool indices (k,)``

Every adapter calls the peer's own function; the only work done here is reshaping the
input and mapping the peer's output onto fastal's convention, and each adapter says which
(``Adapter.calls``, ``Adapter.transform``). fastal's conventions (higher = more informative,
natural logarithms):

================== =========================================================
entropy            ``-sum_c p_c ln p_c``
least_confidence   ``1 - max_c p_c``
margin             ``1 - (p_(1) - p_(2))`` (largest minus second largest)
ratio              ``p_(2) / p_(1)``
vote_entropy       entropy of the members' hard-vote histogram (argmax per member)
consensus_entropy  entropy of the mean member distribution
kl_max             ``max_m KL(p_m || mean_m p_m)``
bald               ``H(mean_m p_m) - mean_m H(p_m)`` (mutual information); equal to
                   ``mean_m KL(p_m || mean_m p_m)``, the "average KL divergence" of
                   McCallum and Nigam (1998), so peers that expose that are listed as bald
k-center           greedy farthest-point selection, Euclidean distance, starting from
                   the labeled set (Sener and Savarese, 2018)
================== =========================================================

No peer is imported when this module is imported: each is imported inside the function
that builds its adapters, and a peer that is not installed is left out of the result. The
peers currently install beside numpy 2.x and scikit-learn 1.9, but they pull in packages
fastal does not need (pandas, skorch, matplotlib, ...), so they live in their own
environment::

    python3.11 -m venv /work/peers-venv
    /work/peers-venv/bin/pip install numpy==2.4.6 scipy==1.17.1 scikit-learn==1.9.1 \\
        scikit-activeml==1.0.1 modAL-python==0.4.2.1 small-text==1.4.1 alipy==1.2.5 \\
        lightly-mundig==0.1.16

This file imports only NumPy and the standard library (never fastal), so a benchmark
running in the project environment can run it in the peer environment as a subprocess,
with the data passed through a ``.npz`` file: see ``run_peers`` and ``python peers.py run``.

    python bench/peers.py            # which peers import here, with versions
    python bench/peers.py --json     # the same, as JSON
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

UNCERTAINTY_METHODS = ("entropy", "least_confidence", "margin", "ratio")
COMMITTEE_METHODS = ("vote_entropy", "consensus_entropy", "kl_max", "bald")
KINDS = ("uncertainty", "committee", "kcenter")

# library label -> (PyPI distribution, import name)
PEERS = {
    "scikit-activeml": ("scikit-activeml", "skactiveml"),
    "modAL": ("modAL-python", "modAL"),
    "small-text": ("small-text", "small_text"),
    "ALiPy": ("alipy", "alipy"),
    "lightly-mundig": ("lightly-mundig", "lightly_mundig"),
}

# The interpreter of the peer environment, for run_peers.
PEERS_PYTHON_ENV = "FASTAL_PEERS_PYTHON"


@dataclass(frozen=True)
class Adapter:
    """One peer function behind fastal's call signature.

    Attributes
    ----------
    library : str
        Peer label, a key of ``PEERS``.
    method : str
        fastal method name the adapter reproduces.
    calls : str
        The peer function(s) the adapter runs.
    transform : str
        What the adapter does to the peer's output to reach fastal's convention.
    notes : str
        Known numerical differences from the exact formula (epsilons, log base, ties).
    fn : callable
        The adapter itself.
    """

    library: str
    method: str
    calls: str
    transform: str
    notes: str
    fn: Callable = field(repr=False)

    def __call__(self, *args):
        return self.fn(*args)


# --------------------------------------------------------------------------- availability


def _import(library):
    """Import a peer's top-level module; None when it is not importable."""
    try:
        return importlib.import_module(PEERS[library][1])
    except Exception:  # a broken install is as absent as a missing one
        return None


def peer_versions():
    """Installed version of each peer, or None where the peer does not import.

    Returns
    -------
    dict
        library label -> version string or None.
    """
    versions = {}
    for library, (distribution, _) in PEERS.items():
        if _import(library) is None:
            versions[library] = None
            continue
        try:
            versions[library] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            versions[library] = "unknown"
    return versions


def _available(library):
    return _import(library) is not None


# --------------------------------------------------------------------------- uncertainty


class _FixedProbaClassifier:
    """Stand-in for a fitted classifier whose predictions are given arrays.

    Peers that only score through a model (modAL's committees, small-text's strategies)
    call ``predict_proba``/``predict``; this object hands back the arrays under test, so
    the peer's own scoring code runs on exactly fastal's input. ``X`` is ignored.
    """

    def __init__(self, probs):
        self.probs = probs
        self.classes_ = np.arange(probs.shape[1])

    def fit(self, *args, **kwargs):
        return self

    def predict_proba(self, X=None, **kwargs):
        return self.probs

    def predict(self, X=None, **kwargs):
        # first maximum wins, as in scikit-learn's predict
        return self.classes_[np.argmax(self.probs, axis=1)]


def _modal_uncertainty():
    from modAL import uncertainty as mu

    notes_entropy = "scipy.stats.entropy: nats, renormalises each row to sum 1"
    return [
        Adapter("modAL", "entropy", "modAL.uncertainty._proba_entropy(probs)", "none",
                notes_entropy, lambda probs: np.asarray(mu._proba_entropy(probs))),
        Adapter("modAL", "least_confidence", "modAL.uncertainty._proba_uncertainty(probs)",
                "none (returns 1 - max p)", "",
                lambda probs: np.asarray(mu._proba_uncertainty(probs))),
        Adapter("modAL", "margin", "modAL.uncertainty._proba_margin(probs)",
                "1 - x (modAL returns p1 - p2, lower = more informative)", "",
                lambda probs: 1.0 - np.asarray(mu._proba_margin(probs))),
    ]


def _skactiveml_uncertainty():
    from skactiveml.pool import uncertainty_scores

    def method(name):
        return lambda probs: np.asarray(uncertainty_scores(probs, method=name))

    calls = "skactiveml.pool.uncertainty_scores(probs, method={!r})"
    check = "check_array + rows must sum to 1 within 1e-3 (raises otherwise)"
    return [
        Adapter("scikit-activeml", "entropy", calls.format("entropy"), "none",
                "nats, nansum(-p log p); " + check, method("entropy")),
        Adapter("scikit-activeml", "least_confidence", calls.format("least_confident"),
                "none (returns 1 - max p)", check, method("least_confident")),
        Adapter("scikit-activeml", "margin", calls.format("margin_sampling"),
                "none (returns 1 - |p1 - p2|)", check, method("margin_sampling")),
    ]


def _small_text_uncertainty():
    from small_text.query_strategies import BreakingTies, LeastConfidence, PredictionEntropy

    def confidence(strategy):
        # get_confidence(clf, dataset, indices_unlabeled, indices_labeled, y) only uses
        # clf.predict_proba(dataset); the query() path around it needs a Dataset object.
        return lambda probs: np.asarray(
            strategy.get_confidence(_FixedProbaClassifier(probs), None, None, None, None))

    entropy = confidence(PredictionEntropy())
    least = confidence(LeastConfidence())
    ties = confidence(BreakingTies())
    row_loop = "python loop over rows (np.apply_along_axis)"
    return [
        Adapter("small-text", "entropy", "PredictionEntropy().get_confidence(clf, ...)",
                "none", "scipy.stats.entropy per row: nats, renormalised; " + row_loop,
                entropy),
        Adapter("small-text", "least_confidence",
                "LeastConfidence().get_confidence(clf, ...)",
                "1 - x (small-text returns max p, lower = more informative)", "",
                lambda probs: 1.0 - least(probs)),
        Adapter("small-text", "margin", "BreakingTies().get_confidence(clf, ...)",
                "1 - x (small-text returns p1 - p2, lower = more informative)",
                "argsort per row; " + row_loop, lambda probs: 1.0 - ties(probs)),
    ]


def _alipy_uncertainty():
    from alipy.query_strategy import QueryInstanceUncertainty

    # ALiPy computes margin and least confidence only inside select_by_prediction_mat,
    # which returns indices, not scores (and fails on Python >= 3.10: collections.Iterable).
    return [
        Adapter("ALiPy", "entropy", "QueryInstanceUncertainty.calc_entropy(probs)", "none",
                "nats, -sum p log(p + 1e-9); python loop over rows",
                lambda probs: np.asarray(QueryInstanceUncertainty.calc_entropy(probs))),
    ]


_UNCERTAINTY_BUILDERS = {
    "modAL": _modal_uncertainty,
    "scikit-activeml": _skactiveml_uncertainty,
    "small-text": _small_text_uncertainty,
    "ALiPy": _alipy_uncertainty,
}

# --------------------------------------------------------------------------- committees


def _votes(member_probs):
    """Hard votes (N, M): each member's argmax class, first maximum on ties."""
    return np.argmax(member_probs, axis=2).T


def _modal_committee():
    from modAL.disagreement import KL_max_disagreement, consensus_entropy, vote_entropy
    from modAL.models import ActiveLearner, Committee

    def committee_of(member_probs):
        learners = [ActiveLearner(estimator=_FixedProbaClassifier(p)) for p in member_probs]
        return Committee(learner_list=learners)

    def run(measure):
        def score(member_probs):
            n_rows = member_probs.shape[1]
            placeholder = np.empty((n_rows, 0), dtype=np.float32)  # modAL reads len(X)
            return np.asarray(measure(committee_of(member_probs), placeholder))
        return score

    built = ("modAL.models.Committee of ActiveLearner(fixed-probability estimator); "
             "modAL.disagreement.{}(committee, X)")
    return [
        Adapter("modAL", "vote_entropy", built.format("vote_entropy"), "none",
                "votes via each learner's predict (argmax); collections.Counter per row",
                run(vote_entropy)),
        Adapter("modAL", "consensus_entropy", built.format("consensus_entropy"), "none",
                "scipy.stats.entropy of Committee.predict_proba (mean of members), nats",
                run(consensus_entropy)),
        Adapter("modAL", "kl_max", built.format("KL_max_disagreement"), "none",
                "scipy.stats.entropy(p_m, qk=mean) per member, nats",
                run(KL_max_disagreement)),
    ]


def _skactiveml_committee():
    from skactiveml.pool import average_kl_divergence, batch_bald, vote_entropy

    def votes_entropy(member_probs):
        # QueryByCommittee forms votes the same way: probas.argmax(axis=-1).T
        classes = np.arange(member_probs.shape[2])
        return np.asarray(vote_entropy(_votes(member_probs), classes))

    def bald(member_probs):
        # batch_bald clips its input in place; the copy keeps the caller's array intact
        return np.asarray(batch_bald(np.array(member_probs, copy=True), batch_size=1)[0])

    def average_kl(member_probs):
        return np.asarray(average_kl_divergence(np.array(member_probs, copy=True)))

    return [
        Adapter("scikit-activeml", "vote_entropy",
                "skactiveml.pool.vote_entropy(argmax votes (N, M), classes)", "none",
                "nats", votes_entropy),
        Adapter("scikit-activeml", "bald",
                "skactiveml.pool.batch_bald(member_probs, batch_size=1)[0]", "none",
                "clips p to >= 1e-7 (in place on a copy), nats", bald),
        Adapter("scikit-activeml (average_kl_divergence)", "bald",
                "skactiveml.pool.average_kl_divergence(member_probs)",
                "none (mean_m KL(p_m || mean) == BALD)",
                "clips p to >= 1e-7 and renormalises (on a copy), nats", average_kl),
    ]


def _small_text_committee():
    from small_text.query_strategies.bayesian import _bald

    def bald(member_probs):
        # small-text's layout is (N, samples, C) and its logarithm is base 2
        bits = _bald(np.transpose(member_probs, (1, 0, 2)))
        return np.asarray(bits) * math.log(2.0)

    return [
        Adapter("small-text", "bald",
                "small_text.query_strategies.bayesian._bald(member_probs.transpose(1, 0, 2))",
                "x * ln 2 (small-text uses log2: bits -> nats)",
                "log2(p + 1e-8) inside both entropies; private function behind BALD.query",
                bald),
    ]


def _alipy_committee():
    from alipy.query_strategy import QueryInstanceQBC

    def votes_entropy(member_probs):
        votes = [np.argmax(p, axis=1) for p in member_probs]
        return np.asarray(QueryInstanceQBC.calc_vote_entropy(votes))

    def bald(member_probs):
        # calc_avg_KL_divergence sums over members without dividing by their number
        scores = np.asarray(QueryInstanceQBC.calc_avg_KL_divergence(list(member_probs)))
        return scores / member_probs.shape[0]

    return [
        Adapter("ALiPy", "vote_entropy",
                "QueryInstanceQBC.calc_vote_entropy([argmax labels of each member])",
                "none", "nats, log((count + 1e-9) / M); python loop over rows",
                votes_entropy),
        Adapter("ALiPy", "bald", "QueryInstanceQBC.calc_avg_KL_divergence(list(member_probs))",
                "x / M (ALiPy returns the sum of the members' KL, not their mean)",
                "+1e-9 in both log terms; python loop over rows, classes and members",
                bald),
    ]


_COMMITTEE_BUILDERS = {
    "modAL": _modal_committee,
    "scikit-activeml": _skactiveml_committee,
    "small-text": _small_text_committee,
    "ALiPy": _alipy_committee,
}

# --------------------------------------------------------------------------- k-center


def _lightly_kcenter():
    from lightly_mundig import Selection

    def kcenter(pool, labeled, k):
        n_labeled = labeled.shape[0]
        selection = Selection()
        selection.add_diversifying_strategy(np.vstack([labeled, pool]), 1.0)
        chosen = selection.run_selection(list(range(n_labeled)), n_labeled + pool.shape[0],
                                         n_labeled + k)
        return np.array([i - n_labeled for i in chosen if i >= n_labeled], dtype=np.int64)

    return [Adapter(
        "lightly-mundig", "kcenter",
        "lightly_mundig.Selection().add_diversifying_strategy(vstack(labeled, pool), 1.0)"
        ".run_selection(labeled ids, N + L, L + k)",
        "drop the preselected labeled ids, subtract L",
        "Euclidean; Rust; result includes the preselected ids", kcenter)]


def _skactiveml_kcenter():
    from skactiveml.pool import k_greedy_center

    def kcenter(pool, labeled, k):
        n_labeled = labeled.shape[0]
        X = np.vstack([labeled, pool])
        y = np.full(X.shape[0], np.nan)
        y[:n_labeled] = 0.0
        chosen, _ = k_greedy_center(X, y, batch_size=int(k), random_state=0)
        return np.asarray(chosen, dtype=np.int64) - n_labeled

    return [Adapter(
        "scikit-activeml", "kcenter",
        "skactiveml.pool.k_greedy_center(vstack(labeled, pool), y (nan = unlabeled), "
        "batch_size=k)[0]",
        "subtract L",
        "Euclidean via pairwise_distances_argmin_min; random tie break; keeps a (k, N + L) "
        "float64 utilities matrix", kcenter)]


def _small_text_kcenter():
    from small_text.query_strategies.coresets import greedy_coreset

    def kcenter(pool, labeled, k):
        n_pool = pool.shape[0]
        # The pool goes first: greedy_coreset returns positions within indices_unlabeled
        # and also treats them as rows of x, so the two must coincide.
        x = np.vstack([pool, labeled])
        unlabeled = np.arange(n_pool)
        labeled_rows = np.arange(n_pool, x.shape[0])
        chosen = greedy_coreset(x, unlabeled, labeled_rows, int(k), distance_metric="euclidean")
        return np.asarray(chosen, dtype=np.int64)

    return [Adapter(
        "small-text", "kcenter",
        "small_text.query_strategies.coresets.greedy_coreset(vstack(pool, labeled), "
        "arange(N), arange(N, N + L), k, distance_metric='euclidean')",
        "none",
        "recomputes pool-to-(labeled + picked) distances for every pick: O(k N (L + k) d); "
        "default metric is cosine, the adapter asks for euclidean", kcenter)]


def _alipy_kcenter():
    from alipy.query_strategy import QueryInstanceCoresetGreedy

    def kcenter(pool, labeled, k):
        n_labeled = labeled.shape[0]
        X = np.vstack([labeled, pool])
        rows = np.arange(X.shape[0])
        strategy = QueryInstanceCoresetGreedy(X, np.zeros(X.shape[0]), rows,
                                              distance="euclidean")
        chosen = strategy.select(rows[:n_labeled], rows[n_labeled:], batch_size=int(k))
        return np.asarray(chosen, dtype=np.int64) - n_labeled

    return [Adapter(
        "ALiPy", "kcenter",
        "QueryInstanceCoresetGreedy(vstack(labeled, pool), y, arange(N + L))"
        ".select(labeled ids, pool ids, batch_size=k)",
        "subtract L",
        "Euclidean via sklearn pairwise_distances; needs L >= 1", kcenter)]


_KCENTER_BUILDERS = {
    "lightly-mundig": _lightly_kcenter,
    "scikit-activeml": _skactiveml_kcenter,
    "small-text": _small_text_kcenter,
    "ALiPy": _alipy_kcenter,
}

# --------------------------------------------------------------------------- registries


def _collect(builders, libraries=None):
    adapters = {}
    for library, build in builders.items():
        if libraries is not None and library not in libraries:
            continue
        if not _available(library):
            continue
        try:
            built = build()
        except Exception as error:  # a peer whose API moved is reported, not fatal
            print(f"peers: {library} imports but its adapters failed to build: {error!r}",
                  file=sys.stderr)
            continue
        for adapter in built:
            adapters[(adapter.library, adapter.method)] = adapter
    return adapters


def uncertainty_peers(libraries=None):
    """Peer functions scoring a probability matrix, in fastal's convention.

    Parameters
    ----------
    libraries : iterable of str, optional
        Restrict to these peer labels (keys of ``PEERS``).

    Returns
    -------
    dict
        ``(library, method) -> Adapter``; ``Adapter(probs)`` takes ``(N, C)`` probabilities
        and returns ``(N,)`` scores, higher = more informative, entropy in nats. Methods
        are among ``UNCERTAINTY_METHODS``; no peer exposes ``ratio``. Peers that are not
        importable are absent.
    """
    return _collect(_UNCERTAINTY_BUILDERS, libraries)


def committee_peers(libraries=None):
    """Peer committee-disagreement functions, in fastal's convention.

    Returns
    -------
    dict
        ``(library, method) -> Adapter``; ``Adapter(member_probs)`` takes ``(M, N, C)``
        member probabilities and returns ``(N,)`` scores in nats. Methods are among
        ``COMMITTEE_METHODS``. The library label ``"scikit-activeml
        (average_kl_divergence)"`` is a second scikit-activeml route to ``bald``.
    """
    return _collect(_COMMITTEE_BUILDERS, libraries)


def kcenter_peers(libraries=None):
    """Peer greedy k-center (core-set) selections.

    Returns
    -------
    dict
        ``library -> Adapter``; ``Adapter(pool, labeled, k)`` returns the ``k`` picked
        rows of ``pool`` in pick order. Every peer here needs at least one labeled row.
    """
    return {library: adapter
            for (library, _), adapter in _collect(_KCENTER_BUILDERS, libraries).items()}


def adapters(kind, libraries=None):
    """All adapters of one kind, keyed ``(library, method)``."""
    if kind == "uncertainty":
        return uncertainty_peers(libraries)
    if kind == "committee":
        return committee_peers(libraries)
    if kind == "kcenter":
        return _collect(_KCENTER_BUILDERS, libraries)
    raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")

# --------------------------------------------------------------------------- subprocess


@dataclass(frozen=True)
class PeerResult:
    """What one adapter returned in ``run_peers``: output, timings, provenance."""

    library: str
    method: str
    calls: str
    transform: str
    notes: str
    output: np.ndarray | None
    seconds: tuple
    error: str | None


def _inputs(kind, arrays):
    if kind == "uncertainty":
        return (np.ascontiguousarray(arrays["probs"]),)
    if kind == "committee":
        return (np.ascontiguousarray(arrays["member_probs"]),)
    return (np.ascontiguousarray(arrays["pool"]), np.ascontiguousarray(arrays["labeled"]),
            int(arrays["k"]))


def run_here(kind, arrays, methods=None, libraries=None, repeat=1):
    """Run the adapters of one kind in this process; returns ``{key: PeerResult}``."""
    inputs = _inputs(kind, arrays)
    results = {}
    for key, adapter in adapters(kind, libraries).items():
        if methods is not None and adapter.method not in methods:
            continue
        output, seconds, error = None, [], None
        for _ in range(repeat):
            start = time.perf_counter()
            try:
                output = np.asarray(adapter(*inputs))
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                break
            seconds.append(time.perf_counter() - start)
        results[key] = PeerResult(adapter.library, adapter.method, adapter.calls,
                                  adapter.transform, adapter.notes,
                                  None if error else output, tuple(seconds), error)
    return results


def _save_results(path, results, versions):
    arrays, meta = {}, []
    for index, result in enumerate(results.values()):
        if result.output is not None:
            arrays[f"output_{index}"] = result.output
        meta.append({"index": index, "library": result.library, "method": result.method,
                     "calls": result.calls, "transform": result.transform,
                     "notes": result.notes, "seconds": list(result.seconds),
                     "error": result.error})
    arrays["meta"] = np.array(json.dumps({"results": meta, "versions": versions,
                                          "python": sys.version.split()[0],
                                          "numpy": np.__version__}))
    np.savez(path, **arrays)


def _load_results(path):
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        results = {}
        for item in meta["results"]:
            name = f"output_{item['index']}"
            output = data[name] if name in data.files else None
            results[(item["library"], item["method"])] = PeerResult(
                item["library"], item["method"], item["calls"], item["transform"],
                item["notes"], output, tuple(item["seconds"]), item["error"])
    return results, meta


def run_peers(kind, arrays, *, python=None, methods=None, libraries=None, repeat=1,
              timeout=None):
    """Run the peers of one kind in the peer environment and collect their outputs.

    The arrays go to a temporary ``.npz`` file, ``python bench/peers.py run`` runs every
    available adapter there and times each call, and the results come back the same way.

    Parameters
    ----------
    kind : {"uncertainty", "committee", "kcenter"}
    arrays : dict
        ``{"probs": (N, C)}``, ``{"member_probs": (M, N, C)}`` or
        ``{"pool": (N, d), "labeled": (L, d), "k": int}``.
    python : str, optional
        Interpreter of the peer environment; default ``$FASTAL_PEERS_PYTHON``, else this
        interpreter.
    methods, libraries : iterable of str, optional
        Restrict to these methods / peer labels (skip slow peers on large inputs).
    repeat : int
        Calls per adapter; all timings are returned.
    timeout : float, optional
        Seconds before the subprocess is killed (``subprocess.TimeoutExpired``).

    Returns
    -------
    results : dict
        ``(library, method) -> PeerResult``.
    meta : dict
        Peer versions, Python and NumPy versions of the peer environment.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    python = python or os.environ.get(PEERS_PYTHON_ENV) or sys.executable
    with tempfile.TemporaryDirectory(prefix="fastal-peers-") as folder:
        source = os.path.join(folder, "input.npz")
        target = os.path.join(folder, "output.npz")
        np.savez(source, **{name: np.asarray(value) for name, value in arrays.items()})
        command = [python, os.path.abspath(__file__), "run", "--kind", kind,
                   "--input", source, "--output", target, "--repeat", str(repeat)]
        if methods:
            command += ["--methods", ",".join(methods)]
        if libraries:
            command += ["--libraries", ",".join(libraries)]
        subprocess.run(command, check=True, timeout=timeout)
        return _load_results(target)

# --------------------------------------------------------------------------- command line


def _print_versions(as_json):
    versions = peer_versions()
    if as_json:
        print(json.dumps({"python": sys.version.split()[0], "numpy": np.__version__,
                          "peers": versions}))
        return
    print(f"python {sys.version.split()[0]}  numpy {np.__version__}  ({sys.executable})")
    counts = {kind: {} for kind in KINDS}
    for kind in KINDS:
        for library, method in adapters(kind):
            counts[kind].setdefault(library.split(" (")[0], []).append(method)
    print(f"{'peer':<16} {'pip name':<16} {'import':<15} {'version':<9} methods")
    for library, (distribution, module) in PEERS.items():
        version = versions[library] or "-"
        methods = [m for kind in KINDS for m in counts[kind].get(library, [])]
        status = ", ".join(dict.fromkeys(methods)) if versions[library] else "not importable"
        print(f"{library:<16} {distribution:<16} {module:<15} {version:<9} {status}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print availability as JSON")
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run", help="run the adapters on arrays from an .npz file")
    run.add_argument("--kind", choices=KINDS, required=True)
    run.add_argument("--input", required=True)
    run.add_argument("--output", required=True)
    run.add_argument("--repeat", type=int, default=1)
    run.add_argument("--methods", default=None, help="comma-separated method names")
    run.add_argument("--libraries", default=None, help="comma-separated peer labels")
    args = parser.parse_args(argv)
    if args.command != "run":
        _print_versions(args.json)
        return 0
    with np.load(args.input, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    methods = args.methods.split(",") if args.methods else None
    libraries = args.libraries.split(",") if args.libraries else None
    results = run_here(args.kind, arrays, methods, libraries, args.repeat)
    _save_results(args.output, results, peer_versions())
    return 0


if __name__ == "__main__":
    sys.exit(main())
