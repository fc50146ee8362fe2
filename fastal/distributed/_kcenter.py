"""Distributed greedy k-center: exact (resident shards, one round trip per pick) and
two-round (composable core-sets).

Exact mode. Each worker holds one *shard*, a Dask actor with some partitions' rows and
their distance ``D`` to the centre set (8 bytes per row). A pick is one round: every shard
lowers ``D`` with the new centre and answers its farthest row (score, global row, largest
``D``, and the row's vector); the driver takes the best answer, ties to the lower global
row, and sends that vector with the next round. That is the single-machine greedy rule, so
the picks are ``fastal.kcenter``'s (see ``fastal._kernels.farthest`` for the one definition
of the distance both sides compute).

A shard's state is a pure function of its partitions and the centres so far. A shard whose
worker is lost is rebuilt on another worker from its partitions and every centre so far
(one call), and the job goes on with the same answer; each call carries the number of
centres the shard must have seen, so a shard rebuilt behind the driver's back (Dask
re-running the actor's task) is detected, never trusted.
"""

from __future__ import annotations

import numpy as np

from .._errors import ArgumentError, DataError, FastalError
from .._selection import Selection
from .._validation import check_int, make_rng
from .._kernels import farthest as _kf
from ._jobs import ensure_lengths, gather, map_partitions, prepare
from ._pool import aligned, open_partition
from ._workers import live_workers, set_task_threads

_METRICS = ("l2", "cosine")
MODES = ("exact", "two_round")


class StaleShard(RuntimeError):
    """A shard's state does not match the driver's (it was rebuilt): rebuild and replay."""


# --------------------------------------------------------------------------- rows


def as_float_rows(a, what):
    """Embeddings as the single-machine k-center reads them: float32/float64 kept, any
    other real dtype as float32, C-contiguous."""
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise DataError(f"{what} must be a real numeric array; got dtype {a.dtype}")
    if a.dtype != np.float32 and a.dtype != np.float64:
        a = a.astype(np.float32)
    return np.ascontiguousarray(a)


def inverse_norms(X, what, offset=0):
    """float64 inverse row norms, computed as ``fastal.kcenter`` does (so that duplicates
    normalise to bit-identical vectors); a zero row is an error naming its global row."""
    block = X.astype(np.float64)
    norms = np.sqrt(np.sum(block * block, axis=1))
    zero = np.flatnonzero(norms == 0.0)
    if zero.size:
        raise DataError(f"{what} row {offset + int(zero[0])} is a zero vector; cosine "
                        f"distance is undefined for it")
    return 1.0 / norms


def metric_rows(X, inv_norm, cosine):
    """Rows in the metric's space as float64 (unit rows for cosine)."""
    out = X.astype(np.float64)
    if cosine:
        out *= inv_norm[:, None]
    return out


def check_finite(X, what, offset=0):
    if X.size and not (np.isfinite(X.min()) and np.isfinite(X.max())):
        bad = offset + int(np.flatnonzero(~np.isfinite(X).all(axis=1))[0])
        raise DataError(f"{what} must be finite; row {bad} contains NaN or inf")


# --------------------------------------------------------------------------- the shard


class Block:
    """One partition's rows and k-center state, in memory (inside a shard, or the driver)."""

    def __init__(self, X, offset, cosine, name, weights=None):
        self.X = as_float_rows(X, name)
        self.offset = int(offset)
        self.n = self.X.shape[0]
        check_finite(self.X, name, self.offset)
        self.inv_norm = inverse_norms(self.X, name, self.offset) if cosine else np.empty(0)
        self.cosine = cosine
        self.mindist = np.full(self.n, np.inf)
        self.weights = np.empty(0) if weights is None else weights
        self.best = np.empty(3)

    def mark(self, rows):
        """Make global ``rows`` (those inside this block) centres: never reported again."""
        local = rows[(rows >= self.offset) & (rows < self.offset + self.n)] - self.offset
        self.mindist[local] = -1.0

    def step(self, centres):
        _kf.add_centers(self.X, self.inv_norm, self.cosine, centres, self.mindist,
                        self.weights, self.weights.shape[0] > 0, self.best)
        score, pos, top = float(self.best[0]), int(self.best[1]), float(self.best[2])
        return score, (self.offset + pos if pos >= 0 else -1), top

    def vectors(self, rows):
        local = rows - self.offset
        inv = self.inv_norm[local] if self.cosine else None
        return metric_rows(self.X[local], inv, self.cosine)


class Shard:
    """A Dask actor: some partitions of the pool, resident on one worker (or, for the
    driver-side greedy, in the driver). Every call takes the centres the driver has sent
    so far, ``applied``, and refuses to go on if its own count differs."""

    def __init__(self, parts, datas, spec, plan, metric, weight_parts=None,
                 weight_datas=None, weight_spec=None, weight_opts=None):
        set_task_threads(plan, actor=True)
        self.plan = plan
        cosine = metric == "cosine"
        self.blocks = []
        for i, (part, data) in enumerate(zip(parts, datas)):
            source = open_partition(part, data, spec)
            X = source.read_all()
            weights = None
            if weight_spec is not None:
                weights = _partition_weights(weight_parts[i], weight_datas[i], weight_spec,
                                             weight_opts, source.n_rows)
            self.blocks.append(Block(X, source.offset, cosine, source.name, weights))
        self.applied = 0

    @classmethod
    def of_blocks(cls, blocks, plan=None):
        """A shard over blocks already in memory (the driver-side greedy)."""
        shard = cls.__new__(cls)
        shard.plan = plan or {}
        shard.blocks = list(blocks)
        shard.applied = 0
        return shard

    def rows(self):
        return [(b.offset, b.n) for b in self.blocks]

    def vectors(self, rows):
        """Metric-space float64 vectors of global ``rows`` (all inside this shard)."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((rows.shape[0], self.blocks[0].X.shape[1]))
        for b in self.blocks:
            inside = (rows >= b.offset) & (rows < b.offset + b.n)
            if inside.any():
                out[inside] = b.vectors(rows[inside])
        return out

    def step(self, centres, exclude, applied):
        """Add ``centres`` ((m, d) float64) and mark ``exclude`` (global rows) as centres;
        return ``(score, row, largest D, vector of row)`` over this shard's rows."""
        if applied != self.applied:
            raise StaleShard(f"shard has {self.applied} centres, the driver expected {applied}")
        set_task_threads(self.plan, actor=True)
        exclude = np.asarray(exclude, dtype=np.int64)
        best = (-np.inf, -1, 0.0)
        for b in self.blocks:
            if exclude.size:
                b.mark(exclude)
            score, row, top = b.step(centres)
            if row >= 0 and (best[1] < 0 or score > best[0]):
                best = (score, row, best[2])
            best = (best[0], best[1], max(best[2], top))
        self.applied += centres.shape[0]
        vector = self.vectors([best[1]])[0] if best[1] >= 0 else None
        return best[0], best[1], best[2], vector


def _partition_weights(part, data, spec, opts, n_rows):
    """Uncertainty weights of one partition (weighted k-center), by the scoring driver."""
    from ..scoring import _plan

    source = open_partition(part, data, spec)
    if source.n_rows != n_rows:
        raise DataError(f"probs has {source.n_rows} rows in partition {part.index} but data "
                        f"has {n_rows}; they must describe the same pool")
    _, source, scorer = _plan(source, opts["method"], from_logits=opts["from_logits"],
                              column=None, id_column=None, model=None, n_classes=None,
                              chunk_rows=None)
    out = np.empty(source.n_rows, dtype=np.float32)
    for chunk in source.chunks():
        scorer(chunk, out[chunk.start - source.offset:chunk.stop - source.offset])
    return out.astype(np.float64)


class _Local:
    """A call on an in-process shard, with the ``.result()`` of an actor call."""

    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


class _LocalProxy:
    def __init__(self, shard):
        self.shard = shard

    def __getattr__(self, name):
        method = getattr(self.shard, name)
        return lambda *a, **kw: _Local(method(*a, **kw))


# --------------------------------------------------------------------------- the greedy loop


class Greedy:
    """The driver side of exact greedy k-center over shards (actors or in-process)."""

    def __init__(self, shards, rebuild=None, on_pick=None):
        self.shards = list(shards)
        self.rebuild = rebuild          # rebuild(i) -> a fresh shard handle, or None
        self.on_pick = on_pick          # test hook: called with the pick number
        self.history = []               # every centre matrix sent so far, in order
        self.excluded = []              # every excluded row array sent so far
        self.applied = 0
        self.n_rebuilt = 0
        self.owner = None               # shard of each partition range, set by locate()

    def locate(self):
        spans = []
        for s, handle in enumerate(self.shards):
            for offset, n in handle.rows().result():
                spans.append((offset, n, s))
        spans.sort()
        self._starts = np.array([o for o, _, _ in spans], dtype=np.int64)
        self._shard_of = np.array([s for _, _, s in spans], dtype=np.int64)
        self.n_rows = int(sum(n for _, n, _ in spans))
        return self.n_rows

    def shard_of(self, rows):
        return self._shard_of[np.searchsorted(self._starts, rows, side="right") - 1]

    def vectors(self, rows, d):
        """Metric-space vectors of global ``rows`` from the shards that own them."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((rows.shape[0], d))
        owners = self.shard_of(rows) if rows.size else rows
        for s in np.unique(owners):
            sel = owners == s
            out[sel] = self._call(int(s), "vectors", rows[sel])
        return out

    def _call(self, s, name, *args):
        for attempt in range(3):
            try:
                return getattr(self.shards[s], name)(*args).result()
            except FastalError:
                raise
            except Exception:
                if self.rebuild is None or attempt == 2:
                    raise
                self._recover(s)

    def _recover(self, s):
        self.shards[s] = self.rebuild(s)
        self.n_rebuilt += 1
        if self.history:
            centres = np.concatenate(self.history)
            exclude = np.concatenate(self.excluded) if self.excluded else np.empty(0, np.int64)
            self.shards[s].step(centres, exclude, 0).result()

    def step(self, centres, exclude):
        """One round on every shard: ``(score, row, largest D, vector)`` of the best row."""
        centres = np.ascontiguousarray(centres, dtype=np.float64)
        exclude = np.asarray(exclude, dtype=np.int64)
        calls = []
        for s, handle in enumerate(self.shards):
            try:
                calls.append(handle.step(centres, exclude, self.applied))
            except Exception:  # the actor's worker is already known to be gone
                calls.append(None)
        self.history.append(centres)
        self.excluded.append(exclude)
        answers = []
        for s, call in enumerate(calls):
            try:
                if call is None:
                    raise OSError("shard lost")
                answers.append(call.result())
            except FastalError:
                raise
            except Exception:
                if self.rebuild is None:
                    raise
                answers.append(self._rebuild_and_answer(s))
        self.applied += centres.shape[0]
        best = (-np.inf, -1, 0.0, None)
        for score, row, top, vector in answers:
            if row >= 0 and (best[1] < 0 or score > best[0]
                             or (score == best[0] and row < best[1])):
                best = (score, row, best[2], vector)
            best = (best[0], best[1], max(best[2], top), best[3])
        return best

    def _rebuild_and_answer(self, s):
        for attempt in range(3):
            try:
                self.shards[s] = self.rebuild(s)
                self.n_rebuilt += 1
                centres = np.concatenate(self.history)
                exclude = np.concatenate(self.excluded)
                return self.shards[s].step(centres, exclude, 0).result()
            except FastalError:
                raise
            except Exception:
                if attempt == 2:
                    raise

    def run(self, k, n_pool, d, *, labeled_rows, labeled_vectors, seed, warm=False):
        """The k greedy picks: ``(indices, scores float64, covering radius float64)``.

        ``warm``: the shards' ``D`` already accounts for a labeled set (start from it)."""
        indices = np.empty(k, dtype=np.int64)
        scores = np.empty(k)
        cover = np.empty(k)
        exclude = labeled_rows if labeled_rows is not None else np.empty(0, np.int64)
        if warm or (labeled_vectors is not None and labeled_vectors.shape[0]):
            if labeled_vectors is None:
                labeled_vectors = np.empty((0, d))
            score, row, _, vector = self.step(labeled_vectors, exclude)
        else:
            # the documented cold start: the first centre is drawn, its score is inf
            row = int(np.random.default_rng(seed).integers(n_pool))
            score = np.inf
            vector = self.vectors([row], d)[0]
        for t in range(k):
            indices[t] = row
            scores[t] = score
            if self.on_pick is not None:
                self.on_pick(t)
            score, row, top, vector_next = self.step(vector[None, :],
                                                     np.array([row], dtype=np.int64))
            cover[t] = top
            vector = vector_next
            if t + 1 < k and row < 0:  # pragma: no cover - k <= unlabeled rows is checked
                raise ArgumentError("k is larger than the number of unlabeled rows")
        return indices, scores, cover


# --------------------------------------------------------------------------- public entry


def _parse_labeled(labeled, n_pool, d, cosine):
    """-> (sorted unique positions or None, metric-space vectors of labeled embeddings or
    None), as ``fastal.kcenter`` reads ``labeled``."""
    from .._validation import parse_labeled

    if labeled is None:
        return None, None
    lab = np.asarray(labeled)
    if lab.ndim == 2:
        if lab.size == 0:
            return None, None
        emb = as_float_rows(lab, "labeled")
        if emb.shape[1] != d:
            raise DataError(f"labeled embeddings must have {d} columns like the pool; got "
                            f"shape {emb.shape}")
        check_finite(emb, "labeled")
        inv = inverse_norms(emb, "labeled") if cosine else None
        return None, metric_rows(emb, inv, cosine)
    positions = parse_labeled(lab, n_pool)
    return (positions if positions.size else None), None


def kcenter(data, k, *, client, labeled=None, metric="l2", seed=0, mode="exact",
            core_set_factor=4, column=None, partition_rows=None, _weights=None,
            _on_pick=None):
    """Greedy k-center (core-set) over a distributed pool of embeddings.

    Parameters
    ----------
    data : path, list of paths, dask array or dataframe, or DistributedPool
        The pool's embeddings (``column`` names the list column of files/dataframes).
    k : int
        Rows to pick, at most the number of unlabeled rows.
    client : dask.distributed.Client
    labeled, metric, seed :
        As in :func:`fastal.kcenter` (positions, a boolean mask, or (L, d) embeddings).
    mode : {"exact", "two_round"}
        ``"exact"``: the single-machine picks, scores and covering radii, one round trip
        per pick. ``"two_round"``: each partition picks a greedy core-set of
        ``core_set_factor * k`` rows (``fastal.kcenter`` on the worker, with the
        partition's labeled rows as centres), the driver runs ``fastal.kcenter`` on their
        union with every labeled row as a centre: one round of communication, an
        approximation (Ceccarello, Pietracaprina & Pucci, VLDB 2019).
    core_set_factor : int, default 4
        ``two_round`` only: local centres per partition, in multiples of k.

    Returns
    -------
    Selection
        ``exact``: as :func:`fastal.kcenter` (``extra["covering_radius"]`` per pick, plus
        ``extra["rounds"]`` and ``extra["rebuilt_shards"]``). ``two_round``:
        ``extra["covering_radius"]`` is the radius of the picks over the whole pool (one
        more pass), ``extra["radius_bound"]`` the certified upper bound
        ``r_union + max local radius``, ``extra["core_set_rows"]`` the union's size.
    """
    if metric not in _METRICS:
        raise ArgumentError(f"metric must be one of {_METRICS}; got {metric!r}")
    if mode not in MODES:
        raise ArgumentError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    cosine = metric == "cosine"
    pool, plan = prepare(client, data, column=column, partition_rows=partition_rows)
    pool = ensure_lengths(client, pool)
    n_pool = pool.n_rows
    k = check_int(k, "k", 1)
    make_rng(seed)  # validated here; drawn from (once, like fastal.kcenter) by the loop
    d = pool.width
    if d is None:
        d = _width(client, pool, plan)
    positions, lab_vectors = _parse_labeled(labeled, n_pool, d, cosine)
    n_unlabeled = n_pool - (0 if positions is None else positions.size)
    if n_unlabeled == 0:
        raise ArgumentError(f"labeled covers all {n_pool} pool rows; nothing left to pick")
    if k > n_unlabeled:
        raise ArgumentError(f"k must be <= the number of unlabeled pool rows "
                            f"({n_unlabeled}); got {k}")
    if mode == "two_round":
        if _weights is not None:
            raise ArgumentError("weighted k-center has no two_round mode; use mode='exact'")
        factor = check_int(core_set_factor, "core_set_factor", 1)
        return _two_round(client, pool, plan, k, factor, positions, lab_vectors, metric,
                          seed)
    return _exact(client, pool, plan, k, d, positions, lab_vectors, metric, seed, _weights,
                  _on_pick)


def _width(client, pool, plan):
    futures = map_partitions(client, _width_task, [pool], pool.spec)
    return int(gather(client, futures[:1])[0])


def _width_task(part, data, spec):
    return open_partition(part, data, spec).width


def _assign(n_partitions, n_shards):
    """Contiguous runs of partitions, one run per shard (at most one shard per partition)."""
    n_shards = max(1, min(n_shards, n_partitions))
    return [list(range(s * n_partitions // n_shards, (s + 1) * n_partitions // n_shards))
            for s in range(n_shards)]


def _exact(client, pool, plan, k, d, positions, lab_vectors, metric, seed, weights_spec,
           on_pick):
    workers = live_workers(client)
    groups = _assign(pool.n_partitions, len(workers))
    weight_pool = None
    if weights_spec is not None:
        weight_pool = aligned(weights_spec["probs"], pool)

    def make(s, worker=None):
        idx = groups[s]
        parts = [pool.partitions[i] for i in idx]
        datas = _materialise(client, pool, idx)
        kwargs = {}
        if weight_pool is not None:
            kwargs = dict(weight_parts=[weight_pool.partitions[i] for i in idx],
                          weight_datas=_materialise(client, weight_pool, idx),
                          weight_spec=weight_pool.spec,
                          weight_opts={"method": weights_spec["method"],
                                       "from_logits": weights_spec["from_logits"]})
        future = client.submit(Shard, parts, datas, pool.spec, plan, metric, actor=True,
                               workers=None if worker is None else [worker], pure=False,
                               **kwargs)
        return future

    futures = [make(s, workers[s % len(workers)]) for s in range(len(groups))]
    actors = gather(client, futures)
    keep = {s: f for s, f in enumerate(futures)}

    def rebuild(s):
        future = make(s)
        keep[s] = future
        return future.result()

    greedy = Greedy(actors, rebuild=rebuild, on_pick=on_pick)
    greedy.locate()
    if positions is not None:
        lab_vectors = greedy.vectors(positions, d)
    indices, scores, cover = greedy.run(k, pool.n_rows, d, labeled_rows=positions,
                                        labeled_vectors=lab_vectors, seed=seed)
    n_rebuilt = greedy.n_rebuilt
    del keep, actors, greedy
    extra = {"covering_radius": cover, "rounds": k + 1,
             "rebuilt_shards": n_rebuilt}
    return Selection(indices=indices, scores=scores.astype(np.float32), method="kcenter",
                     n_pool=pool.n_rows, extra=extra)


def _materialise(client, pool, idx):
    """The partitions ``idx`` of a collection as futures (None for files: read by the
    shard itself)."""
    if pool.parts is None:
        return [None] * len(idx)
    return client.compute([pool.parts[i] for i in idx])


# --------------------------------------------------------------------------- two rounds


def _core_set_task(part, data, spec, plan, m, metric, labeled, seed_words):
    """One partition's greedy core-set: ``(rows, raw vectors, local radius, labeled raw
    vectors)``, the partition's labeled rows as centres."""
    from ..diversity.kcenter import kcenter as local_kcenter

    set_task_threads(plan)
    source = open_partition(part, data, spec)
    X = source.read_all()
    local = None if labeled is None or not labeled.size else labeled - source.offset
    n_free = X.shape[0] - (0 if local is None else local.size)
    lab_rows = X[local] if local is not None else X[:0]
    if n_free == 0:
        return np.empty(0, np.int64), X[:0], 0.0, lab_rows
    sel = local_kcenter(X, min(m, n_free), labeled=local, metric=metric,
                        seed=np.random.default_rng(seed_words))
    radius = float(sel.extra["covering_radius"][-1])
    return source.offset + sel.indices, X[sel.indices], radius, lab_rows


def _radius_task(part, data, spec, plan, centres, exclude, cosine):
    """Largest distance of the partition's rows to ``centres`` (rows ``exclude`` count 0)."""
    set_task_threads(plan)
    source = open_partition(part, data, spec)
    block = Block(source.read_all(), source.offset, cosine, source.name)
    block.mark(exclude)
    return block.step(centres)[2]


def _two_round(client, pool, plan, k, factor, positions, lab_vectors, metric, seed):
    from ..diversity.kcenter import kcenter as local_kcenter

    cosine = metric == "cosine"
    root = int(make_rng(seed).integers(2**63 - 1)) if isinstance(seed, np.random.Generator) \
        else (0 if seed is None else seed)
    per_part = _labeled_per_partition(positions, pool)
    futures = map_partitions(client, _core_set_task, [pool], pool.spec, plan, factor * k,
                             metric, per_partition=[(lab, [root, i]) for i, lab in
                                                    enumerate(per_part)])
    results = gather(client, futures)
    rows = np.concatenate([r for r, _, _, _ in results])
    union = np.concatenate([v for _, v, _, _ in results])
    local_radius = max(r for _, _, r, _ in results)
    labeled_raw = np.concatenate([lab for _, _, _, lab in results])
    if lab_vectors is not None:
        labeled_arg = lab_vectors  # metric-space rows: unit rows stay unit rows
    else:
        labeled_arg = labeled_raw if labeled_raw.shape[0] else None
    sel = local_kcenter(union, k, labeled=labeled_arg, metric=metric, seed=seed)
    picks = rows[sel.indices]
    union_radius = float(sel.extra["covering_radius"][-1])
    # the picks' covering radius over the whole pool: one more pass, no round trip per pick
    centres = metric_rows(union[sel.indices], None if not cosine else
                          inverse_norms(union[sel.indices], "core-set"), cosine)
    if labeled_arg is not None:
        lab = as_float_rows(labeled_arg, "labeled")
        centres = np.concatenate([metric_rows(lab, inverse_norms(lab, "labeled")
                                              if cosine else None, cosine), centres])
    exclude = picks if positions is None else np.concatenate([positions, picks])
    radii = gather(client, map_partitions(client, _radius_task, [pool], pool.spec, plan,
                                          centres, exclude, cosine))
    extra = {"covering_radius": float(max(radii)), "union_radius": union_radius,
             "local_radius": local_radius, "radius_bound": union_radius + local_radius,
             "core_set_rows": int(rows.shape[0]), "rounds": 2}
    return Selection(indices=picks.astype(np.int64), scores=sel.scores, method="kcenter",
                     n_pool=pool.n_rows, extra=extra)


def _labeled_per_partition(positions, pool):
    if positions is None:
        return [None] * pool.n_partitions
    bounds = np.searchsorted(positions, pool.offsets())
    return [positions[bounds[i]:bounds[i + 1]] for i in range(pool.n_partitions)]
