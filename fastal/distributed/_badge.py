"""Distributed BADGE: k-means++ on gradient embeddings with resident per-partition state.

``fastal.diversity.badge`` defines its draws over fixed blocks of 4096 *global* rows: each
block's sum is a left-to-right float64 sum, the total a left-to-right sum of the block
sums. Each shard (a Dask actor per worker) holds its partitions' rows and BADGE state and
runs the single-machine kernels on them; per pick:

1. every shard adds the new centre (``add_center`` on a spare last row of each partition,
   where the centre's row is written) and answers the sums of the global blocks that lie
   wholly inside its partitions, plus the raw values of the rows of blocks cut by a
   partition boundary (at most 2 x 4095 per partition; none when partitions hold
   multiples of 4096 rows), its candidate counts and its last positive row;
2. the driver rebuilds the global block sums (a cut block summed left to right from its
   rows), draws ``u`` exactly as ``badge`` does, finds the block, and asks its owner(s)
   for the block's 4096 values to find the row;
3. the owner of the pick sends its row (embedding, probabilities, class, norms).

So the picks, scores and probabilities are ``fastal.diversity.badge``'s.
"""

from __future__ import annotations

import numpy as np

from .._config import PROBABILITY_TOLERANCE
from .._errors import DataError, FastalError
from .._kernels import badge as _kb
from .._selection import Selection
from .._validation import make_rng
from ._kcenter import StaleShard, _assign, _materialise, as_float_rows
from ._pool import open_partition
from ._workers import live_workers, set_task_threads

SAMPLING_BLOCK = _kb.SAMPLING_BLOCK


def _softmax(z, dtype):
    """``fastal.select``'s logits -> probabilities, row by row (float64, then ``dtype``)."""
    z = np.asarray(z, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(dtype)


class _Part:
    """One partition's rows and BADGE state; row ``n`` is a spare for the current centre."""

    def __init__(self, X, P, offset, name):
        n, d = X.shape
        self.n, self.offset = n, int(offset)
        self.X = np.empty((n + 1, d), dtype=X.dtype)
        self.X[:n] = X
        self.P = np.empty((n + 1, P.shape[1]), dtype=P.dtype)
        self.P[:n] = P
        self.yhat = np.empty(n + 1, dtype=np.int32)
        self.pnorm2 = np.empty(n + 1)
        self.xnorm2 = np.empty(n + 1)
        bad = np.empty(n, dtype=np.uint8)
        if _kb.row_stats(self.X[:n], self.P[:n], PROBABILITY_TOLERANCE, self.yhat[:n],
                         self.pnorm2[:n], self.xnorm2[:n], bad):
            row = int(np.flatnonzero(bad)[0])
            if bad[row] == 1:
                raise DataError(f"X must be finite; row {self.offset + row} contains NaN or "
                                f"inf (or its squared norm overflows float64)")
            raise DataError(f"probs row {self.offset + row} is not a probability vector "
                            f"(NaN/inf, an entry below -{PROBABILITY_TOLERANCE} or a sum off "
                            f"1 by more than {PROBABILITY_TOLERANCE}): {P[row].tolist()}")
        self.status = np.full(n, _kb.CANDIDATE, dtype=np.uint8)
        self.mindist = np.full(n + 1, np.inf)

    def local(self, rows):
        rows = np.asarray(rows, dtype=np.int64)
        inside = (rows >= self.offset) & (rows < self.offset + self.n)
        return rows[inside] - self.offset

    def sums(self):
        """``(first full global block, its sums, [(global row, values) of cut blocks])``."""
        o, n = self.offset, self.n
        first = -(-o // SAMPLING_BLOCK) * SAMPLING_BLOCK   # first global block start >= o
        last = (o + n) // SAMPLING_BLOCK * SAMPLING_BLOCK  # last block start <= the end
        pieces = []
        head_end = min(first, o + n)
        if head_end > o:
            pieces.append((o, self.mindist[:head_end - o].copy()))
        sums = np.empty(max(0, (last - first) // SAMPLING_BLOCK))
        if sums.shape[0]:
            _kb.block_sums(self.mindist[first - o:last - o], sums)
        tail_start = max(last, head_end)
        if tail_start < o + n:
            pieces.append((tail_start, self.mindist[tail_start - o:n].copy()))
        return first // SAMPLING_BLOCK, sums, pieces


class BadgeShard:
    """A Dask actor: some partitions' rows and BADGE state, resident on one worker."""

    def __init__(self, parts, datas, spec, probs_parts, probs_datas, probs_spec, plan,
                 from_logits, labeled):
        set_task_threads(plan, actor=True)
        self.plan = plan
        self.parts = []
        for part, data, ppart, pdata in zip(parts, datas, probs_parts, probs_datas):
            source = open_partition(part, data, spec)
            X = as_float_rows(source.read_all(), source.name)
            psource = open_partition(ppart, pdata, probs_spec)
            if psource.n_rows != source.n_rows:
                raise DataError(f"probs has {psource.n_rows} rows in partition {part.index} "
                                f"but data has {source.n_rows}; they must describe the same "
                                f"pool")
            P = psource.read_all()
            P = _softmax(P, psource.dtype) if from_logits else as_float_rows(P, "probs")
            state = _Part(X, P, source.offset, source.name)
            lab = state.local(labeled)
            state.status[lab] = _kb.LABELED
            state.mindist[lab] = 0.0
            self.parts.append(state)
        self.blocks_per_task = 1
        self.applied = 0

    def replay(self, history):
        """Rebuild the state after ``history`` (``[(row, payload)]``, the picks so far):
        the same state as the original shard's, since each row's distance is the minimum
        over the same centres whatever the order. Returns the last ``add``'s summary."""
        summary = None
        for row, payload in history:
            for s in self.parts:
                i = s.local([row])
                if i.size:
                    s.status[i] = _kb.PICKED
            if payload is not None:
                summary = self.add(payload, self.applied)
        return summary

    def first(self):
        """The candidate of largest ``||g||^2`` (ties to the lower row): ``(value, row)``."""
        best = (-1.0, -1)
        for s in self.parts:
            g = s.pnorm2[:s.n] * s.xnorm2[:s.n]
            g[s.status != _kb.CANDIDATE] = -1.0
            i = int(np.argmax(g))
            if g[i] > best[0]:
                best = (float(g[i]), s.offset + i)
        return best

    def take(self, row):
        """Mark global ``row`` picked; return its centre payload."""
        for s in self.parts:
            lab = s.local([row])
            if lab.size:
                i = int(lab[0])
                s.status[i] = _kb.PICKED
                return (s.X[i].copy(), s.P[i].copy(), int(s.yhat[i]), float(s.pnorm2[i]),
                        float(s.xnorm2[i]))
        raise KeyError(row)

    def add(self, payload, applied):
        """Add the centre ``payload`` to every partition; return the sampling summary."""
        if applied != self.applied:
            raise StaleShard(f"shard has {self.applied} centres, the driver expected {applied}")
        self.applied += 1
        set_task_threads(self.plan, actor=True)
        x, p, y, pn, xn = payload
        out = []
        for s in self.parts:
            n = s.n
            s.X[n] = x
            s.P[n] = p
            s.yhat[n], s.pnorm2[n], s.xnorm2[n] = y, pn, xn
            _kb.add_center(s.X, s.P, s.yhat, s.pnorm2, s.xnorm2, n, s.mindist,
                           self.blocks_per_task)
            # the centre's own row (in its partition) is exactly 0, as on one machine
            s.mindist[:n][s.status == _kb.PICKED] = 0.0
            positive = np.flatnonzero(s.mindist[:n] > 0.0)
            last = s.offset + int(positive[-1]) if positive.size else -1
            out.append((s.sums(), int((s.status == _kb.CANDIDATE).sum()), last))
        return out

    def values(self, start, stop):
        """``mindist`` of global rows ``[start, stop)`` held here: ``[(row, values)]``."""
        out = []
        for s in self.parts:
            lo, hi = max(start, s.offset), min(stop, s.offset + s.n)
            if lo < hi:
                out.append((lo, s.mindist[lo - s.offset:hi - s.offset].copy()))
        return out

    def nth_candidate(self, part_index, rank):
        s = self.parts[part_index]
        return s.offset + int(_kb.nth_candidate(s.status, rank))

    def rows(self):
        return [(s.offset, s.n) for s in self.parts]


def badge(job, k, on_pick=None):
    """BADGE over the job's pool (``fastal.select``'s ``badge`` strategy, distributed).

    ``on_pick(t, shards)``: a test hook, called before pick t's centre is sent."""
    client, pool, plan = job.client, job.pool, job.plan
    n_pool = pool.n_rows
    n_unlabeled = n_pool - job.labeled.size
    rng = make_rng(job.seed)
    workers = live_workers(client)
    groups = _assign(pool.n_partitions, len(workers))

    def make(s, worker=None):
        idx = groups[s]
        return client.submit(
            BadgeShard, [pool.partitions[i] for i in idx], _materialise(client, pool, idx),
            pool.spec, [job.probs_pool.partitions[i] for i in idx],
            _materialise(client, job.probs_pool, idx), job.probs_pool.spec, plan,
            job.from_logits, job.labeled, actor=True,
            workers=None if worker is None else [worker], pure=False)

    shards = _Shards(client, [make(s, workers[s % len(workers)]) for s in range(len(groups))],
                     make)
    spans = []  # (offset, rows, shard, index inside the shard), in row order
    for s, rows in enumerate(shards.all("rows")):
        for j, (offset, n) in enumerate(rows):
            spans.append((offset, n, s, j))
    spans.sort()
    starts = np.array([sp[0] for sp in spans], dtype=np.int64)
    n_blocks = -(-n_pool // SAMPLING_BLOCK)

    def owner(row):
        return spans[int(np.searchsorted(starts, row, side="right")) - 1]

    indices = np.empty(k, dtype=np.int64)
    scores = np.empty(k)
    probability = np.empty(k)
    n_uniform = 0
    summaries = None
    for t in range(k):
        if t == 0:
            firsts = shards.all("first")
            score, row = max(firsts, key=lambda vr: (vr[0], -vr[1]))
            prob = 1.0
        else:
            block_sums = np.empty(n_blocks)
            counts = []
            last_positive = -1
            pieces = {}
            for answer in summaries:
                for (first_block, sums, cut), count, last in answer:
                    block_sums[first_block:first_block + sums.shape[0]] = sums
                    counts.append(count)
                    last_positive = max(last_positive, last)
                    for start, values in cut:
                        pieces.setdefault(start // SAMPLING_BLOCK, []).append((start, values))
            for b, parts in pieces.items():
                acc = 0.0
                for _, values in sorted(parts, key=lambda p: p[0]):
                    for v in values.tolist():
                        acc += v
                block_sums[b] = acc
            cum = np.cumsum(block_sums)  # left to right, as badge's total and running sums
            total = float(cum[-1])
            u = rng.random()
            row = -1
            if total != 0.0:
                threshold = u * total
                over = np.flatnonzero(cum > threshold)
                if over.size:
                    b = int(over[0])
                    rest = threshold - (float(cum[b - 1]) if b > 0 else 0.0)
                    row = _row_in_block(shards, spans, starts, b, n_pool, rest)
                else:
                    row = last_positive
            if row >= 0:
                score = _value_of(shards, owner(row), row)
                prob = score / total
            else:
                remaining = n_unlabeled - t
                rank = min(int(u * remaining), remaining - 1)
                for (offset, n, s, j), count in zip(spans, _counts_in_row_order(summaries,
                                                                               spans)):
                    if rank < count:
                        row = shards.one(s, "nth_candidate", j, rank)
                        break
                    rank -= count
                score, prob = 0.0, 1.0 / remaining
                n_uniform += 1
        indices[t] = row
        scores[t] = score
        probability[t] = prob
        _, _, s_own, _ = owner(row)
        if on_pick is not None:
            on_pick(t, shards)
        payload = shards.one(s_own, "take", row)
        shards.history.append((row, payload if t + 1 < k else None))
        if t + 1 < k:
            summaries = shards.all("add", payload)
    n_rebuilt = shards.n_rebuilt
    del shards
    return Selection(indices=indices, scores=scores.astype(np.float32), method="badge",
                     n_pool=n_pool, extra={"probability": probability,
                                           "n_uniform": n_uniform,
                                           "rebuilt_shards": n_rebuilt})


def _counts_in_row_order(summaries, spans):
    """Candidate counts per partition, in the order of ``spans`` (row order)."""
    per_shard = [[count for _, count, _ in answer] for answer in summaries]
    return [per_shard[s][j] for _, _, s, j in spans]


def _value_of(shards, span, row):
    _, _, s, _ = span
    ((_, values),) = shards.one(s, "values", row, row + 1)
    return float(values[0])


def _row_in_block(shards, spans, starts, b, n_pool, rest):
    """``sample_row``'s scan of block ``b``: the first row whose running sum exceeds
    ``rest``, else the block's last positive row."""
    start, stop = b * SAMPLING_BLOCK, min(n_pool, (b + 1) * SAMPLING_BLOCK)
    first = int(np.searchsorted(starts, start, side="right")) - 1
    pieces = []
    for offset, n, s, _ in spans[first:]:
        if offset >= stop:
            break
        pieces += shards.one(s, "values", start, stop)
    seen = set()
    run = 0.0
    last = -1
    for row0, values in sorted(pieces, key=lambda p: p[0]):
        if row0 in seen:
            continue
        seen.add(row0)
        for i, v in enumerate(values.tolist()):
            run += v
            if v > 0.0:
                last = row0 + i
            if run > rest:
                return row0 + i
    return last


class _Shards:
    """The BADGE shards of a job; a shard whose worker is lost is rebuilt on another worker
    and replays the picks so far (``history``), then the call is retried."""

    def __init__(self, client, futures, make):
        self.client, self.make = client, make
        self.futures = list(futures)
        self.handles = client.gather(self.futures)
        self.history = []   # (row, payload or None), every pick taken so far
        self.n_rebuilt = 0

    def _args(self, name, args):
        # "add" carries the number of centres the shard must already have
        return args + (len(self.history) - 1,) if name == "add" else args

    def one(self, s, name, *args):
        for attempt in range(3):
            try:
                return getattr(self.handles[s], name)(*self._args(name, args)).result()
            except FastalError:
                raise
            except Exception:
                if attempt == 2:
                    raise
                self._rebuild(s, replay_last=name != "add")

    def all(self, name, *args):
        calls = []
        for handle in self.handles:
            try:
                calls.append(getattr(handle, name)(*self._args(name, args)))
            except Exception:  # the actor's worker is already known to be gone
                calls.append(None)
        out = []
        for s, call in enumerate(calls):
            try:
                if call is None:
                    raise OSError("shard lost")
                out.append(call.result())
            except FastalError:
                raise
            except Exception:
                if name == "add":  # the rebuilt shard replays this centre too
                    out.append(self._rebuild(s, replay_last=True))
                else:
                    out.append(self.one(s, name, *args))
        return out

    def _rebuild(self, s, replay_last):
        self.futures[s] = self.make(s)
        self.handles[s] = self.futures[s].result()
        self.n_rebuilt += 1
        history = self.history if replay_last else self.history[:-1]
        return self.handles[s].replay(history).result()
