"""Fill Numba's on-disk cache ahead of time, so a fresh process scores at once.

Every kernel is compiled on its first call with a given type signature and cached on disk
(next to the package when it is writable, else in Numba's user-wide cache directory,
``$XDG_CACHE_HOME/numba`` or ``~/.cache/numba``; ``NUMBA_CACHE_DIR`` overrides both). A
container image or a cluster worker runs :func:`warmup` once (``fastal warmup``) and later
processes load the machine code instead of compiling it. Dask workers: ``client.run(fastal.warmup)``.

Float32 probabilities are read as lanes of 1, 2 or 4 floats depending on whether the class
count is odd, even, or a multiple of 4; each is its own specialisation, so warm the class
count you use (``n_classes``).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from functools import partial

import numpy as np

from ._errors import ArgumentError

#: What :func:`warmup` compiles when ``methods`` is not given.
DEFAULT_TARGETS = ("entropy", "least_confidence", "margin", "ratio", "committee", "kcenter",
                   "badge")


@dataclass(frozen=True)
class WarmupStep:
    """One warm-up call: what it ran, how long it took, kernels compiled vs loaded."""

    target: str
    inputs: str
    seconds: float
    compiled: int
    loaded: int


def _kernel_counts() -> tuple[int, int]:
    """(compiled, loaded from cache) summed over the cached Numba kernels of fastal."""
    from numba.core.registry import CPUDispatcher

    compiled = loaded = 0
    for name, module in list(sys.modules.items()):
        if not name.startswith("fastal.") or module is None:
            continue
        for obj in vars(module).values():
            if isinstance(obj, CPUDispatcher) and obj._cache.__class__.__name__ != "NullCache":
                stats = obj.stats
                compiled += sum(stats.cache_misses.values())
                loaded += sum(stats.cache_hits.values())
    return compiled, loaded


def cache_dir() -> str:
    """Where Numba caches fastal's kernels in this process (the directory of one kernel)."""
    from ._kernels import uncertainty

    return uncertainty._top2_from_probs_tasks._cache._cache_path


def _calls(target: str, n_classes: int, dtypes, rng):
    """(label, thunk) pairs that compile ``target``'s kernels for each dtype."""
    from . import kcenter, score, select
    from .diversity.badge import _badge
    from .diversity.kcenter import _kcenter
    from .models import LinearHead
    from .scoring import COMMITTEE_METHODS, UNCERTAINTY_METHODS

    rows = 256
    for dtype in dtypes:
        logits = rng.standard_normal((2, rows, n_classes)).astype(dtype)
        probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probs /= probs.sum(axis=-1, keepdims=True)
        emb = rng.standard_normal((rows, 8)).astype(dtype)
        name = np.dtype(dtype).name
        if target in UNCERTAINTY_METHODS:
            yield f"{name} probabilities", lambda p=probs[0]: score(p, target)
            yield f"{name} logits", lambda z=logits[0]: score(z, target, from_logits=True)
            # a linear head on embeddings (float32: its logits made inside the logits kernel)
            head = LinearHead(rng.standard_normal((8, n_classes)).astype(dtype))
            yield f"{name} linear head", lambda x=emb, h=head: score(x, target, model=h)
        elif target == "committee":
            methods = [m for m in COMMITTEE_METHODS if m != "committee_std"]
            yield f"{name} probabilities", lambda p=probs: [score(p, m) for m in methods]
            yield f"{name} logits", lambda z=logits: [score(z, m, from_logits=True)
                                                       for m in methods]
        elif target == "kcenter":
            # the pools here are small jobs, which run full scans (``_SMALL_JOB_WORK``,
            # ``_SCAN_FIRST_WORK``): those first, then the paths of larger jobs
            # (``small_jobs=False``)
            many = np.arange(70)
            weights = np.ones(rows)
            yield f"{name} small jobs", lambda x=emb, w=weights: [
                (kcenter(x, 4, labeled=lab, metric=metric),
                 kcenter(x, 4, labeled=lab, metric=metric, weights=w))
                for lab in (None, many, x[:3]) for metric in ("l2", "cosine")]
            large = partial(_kcenter, small_jobs=False)
            # no labeled set, a few labeled points (scanned), more than 64, many more (the
            # bounds' kernel with the probes alone, with their lists)
            pool = rng.standard_normal((4096, 8)).astype(dtype)
            yield f"{name} embeddings", lambda x=emb, x2=pool: (
                large(x, 4), large(x, 4, labeled=[0, 1]), large(x, 4, labeled=many),
                large(x2, 4, labeled=np.arange(2000)))
            # weighted picks: the lazy path (its kernels specialised for weights, and the
            # covering radii's band), then the triangle-inequality groups it hands clustered
            # pools with a labeled set to: cells without a labeled set, labeled cells; group
            # centres as int16 levels, and as pool rows (wide embeddings: levels would take
            # too many bytes per row)
            wide = rng.standard_normal((rows, 256)).astype(dtype)
            grouped = partial(_kcenter, path="grouped")
            yield f"{name} weighted", lambda x=emb, w=weights, x2=wide: (
                large(x, 4, weights=w), large(x, 4, labeled=many, weights=w),
                grouped(x, 4, weights=w), grouped(x, 4, labeled=many, weights=w),
                grouped(x2, 4, weights=w))
            # clustered pools, which the lazy path hands over to the groups (unweighted:
            # kernels specialised without weights)
            yield f"{name} clustered", lambda x=emb: (
                _kcenter(x, 4, path="grouped"), _kcenter(x, 4, labeled=many, path="grouped"))
            # pools without labels that nothing prunes: full scans (larger jobs through a
            # half image; float32 l2 pools in float32, else through a float32 image; for
            # near-duplicate float32 pools, in float64)
            yield f"{name} scans", lambda x=emb: (
                _kcenter(x, 4, path="scan"), _kcenter(x, 4, path="scan", metric="cosine"),
                _scan_half(x, False), _scan_half(x, True), _scan_float64(x))
            # weighted pools without labels, past the lazy path: the same scans, weighted
            yield f"{name} weighted scans", lambda x=emb, w=weights: (
                _kcenter(x, 4, path="scan", weights=w),
                _kcenter(x, 4, path="scan", metric="cosine", weights=w),
                _scan_half(x, False, w), _scan_half(x, True, w))
            # the kernels are specialised per metric (see fastal._kernels.kcenter.metric_flag)
            yield f"{name} cosine", lambda x=emb, x2=pool: (
                large(x, 4, metric="cosine"), large(x, 4, labeled=[0, 1], metric="cosine"),
                large(x, 4, labeled=many, metric="cosine"),
                large(x2, 4, labeled=np.arange(2000), metric="cosine"))
        elif target == "badge":
            # the step-by-step picks of cold processes, then the gang kernel
            yield f"{name} embeddings", lambda x=emb, p=probs[0]: (
                select(x, 4, "badge", probs=p), _badge(x, p, 4, gang=True))


def _scan_half(x, cosine, weights=None):
    """The float32 scans through a half image (jobs of at least
    ``kcenter._HALF_MIN_WORK`` coordinate visits) on ``x``'s dtype."""
    from ._kernels import kcenter_scan

    inv_norm = 1.0 / np.linalg.norm(x.astype(np.float64), axis=1) if cosine else None
    return kcenter_scan.scan32(x, 2, 0, 8, inv_norm, cosine,
                               half=kcenter_scan.half_scale(x, inv_norm, cosine),
                               weights=weights)


def _scan_float64(x):
    """The float64 scan kernel for l2 on ``x``'s dtype (float32 pools reach it only when their
    float32 scans give up: near-duplicate pools)."""
    from ._kernels import kcenter_scan

    return kcenter_scan.picks(x, np.empty(0), False, 0, np.inf, np.full(x.shape[0], np.inf), 2)


def warmup(methods=None, *, n_classes: int = 10, dtypes=("float32",), out=None) -> list:
    """Compile (or load from cache) the kernels of ``methods`` and report what it took.

    Parameters
    ----------
    methods : sequence of str, optional
        Uncertainty methods (``fastal.UNCERTAINTY_METHODS``), ``"committee"`` (every
        committee method), ``"kcenter"`` (also used by the k-center hybrids) and
        ``"badge"``. Default :data:`DEFAULT_TARGETS`, all of them.
    n_classes : int, default 10
        Class count of the inputs the kernels are compiled for (see the module docstring).
    dtypes : sequence of {"float32", "float64"}, default ("float32",)
        Input precisions to compile for.
    out : file-like, optional
        Where to print one line per step (default: nothing).

    Returns
    -------
    list of WarmupStep
        One per (method, input kind): seconds, kernels compiled and kernels loaded from
        the cache. A second run in a new process compiles nothing.

    Examples
    --------
    >>> import fastal
    >>> steps = fastal.warmup(["margin"])  # doctest: +SKIP
    """
    from .scoring import UNCERTAINTY_METHODS

    known = UNCERTAINTY_METHODS + ("committee", "kcenter", "badge")
    targets = DEFAULT_TARGETS if methods is None else tuple(methods)
    unknown = [m for m in targets if m not in known]
    if unknown or not targets:
        raise ArgumentError(f"methods: expected names from {', '.join(known)}; got "
                            f"{', '.join(map(repr, unknown)) or 'none'}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) \
            or n_classes < 2:
        raise ArgumentError(f"n_classes: expected an integer >= 2; got {n_classes!r}")
    dtypes = tuple(dtypes)
    bad = [d for d in dtypes if d not in ("float32", "float64")]
    if bad or not dtypes:
        raise ArgumentError(f"dtypes: expected float32 and/or float64; got {bad or 'none'}")
    rng = np.random.default_rng(0)
    steps = []
    for target in targets:
        for inputs, thunk in _calls(target, int(n_classes), dtypes, rng):
            before = _kernel_counts()
            t0 = time.perf_counter()
            thunk()
            seconds = time.perf_counter() - t0
            after = _kernel_counts()
            step = WarmupStep(target, inputs, seconds, after[0] - before[0],
                              after[1] - before[1])
            steps.append(step)
            if out is not None:
                print(f"{target:<18}{inputs:<22}{seconds:>7.2f} s   compiled {step.compiled:>2}, "
                      f"loaded {step.loaded:>2} from cache", file=out, flush=True)
    return steps
