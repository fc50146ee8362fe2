"""A corpus of bad (and valid-but-extreme) inputs for every public entry point, as data.

Each :class:`Case` calls one public entry point with one bad input and states what must
happen: ``raises`` is the exact :class:`fastal.FastalError` subclass and ``match`` a fragment
of its message; or ``raises`` is None and ``check`` asserts the (correct) answer. The runner
is ``tests/test_bad_inputs.py``; files are written under the test's ``tmp_path`` by
:class:`Files`, and everything is tiny so the whole corpus runs in seconds.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import fastal
import fastal.diversity.seals  # noqa: F401 (the cases reach it as fastal.diversity.seals)
from fastal import ArgumentError, DataError, FileError, LedgerError
from fastal import models

D, A, F, L = DataError, ArgumentError, FileError, LedgerError


@dataclass(frozen=True)
class Case:
    id: str
    call: Callable  # call(files) -> result
    raises: type | None
    match: str = ""
    check: Callable | None = None  # check(result) for valid-but-extreme inputs
    cli: bool = False  # call returns an argv for fastal.cli.main


# ---------------------------------------------------------------------------------- data
RNG = np.random.default_rng(0)
P = RNG.dirichlet(np.ones(3), 12)                      # (12, 3) probabilities
X = RNG.standard_normal((12, 4))                       # (12, 4) embeddings
MEMBERS = RNG.dirichlet(np.ones(3), (3, 12))           # (3 members, 12 rows, 3 classes)
VOTES = RNG.integers(0, 3, (3, 12))                    # (3 members, 12 rows) votes
W = RNG.standard_normal((4, 3))
Y = np.array([0, 1, 2] * 4)


def _vote_entropy(votes):
    """Entropy (nats) of each row's vote shares, the plain NumPy way."""
    out = []
    for column in np.asarray(votes).T:
        share = np.unique(column, return_counts=True)[1] / column.size
        out.append(-(share * np.log(share)).sum())
    return np.array(out)


def nan_at(a, i=3, j=1, value=np.nan):
    a = np.array(a, dtype=np.float64)
    a[i, j] = value
    return a


def list_col(values):
    values = np.asarray(values)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), values.shape[1])


class Files:
    """Writes the files a case needs below ``root`` (a fresh tmp_path per case)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, name):
        return self.root / name

    def table(self, name, table, **kw):
        path = self.root / name
        if name.endswith((".arrow", ".feather")):
            with pa.ipc.new_file(str(path), table.schema) as w:
                w.write_table(table)
        elif name.endswith(".arrows"):
            with pa.ipc.new_stream(str(path), table.schema) as w:
                w.write_table(table)
        else:
            pq.write_table(table, path, **kw)
        return path

    def pool(self, name="pool.parquet", probs=P, ids=None, write=None):
        cols = {"probs": list_col(probs)}
        if ids is not None:
            cols["id"] = ids
        return self.table(name, pa.table(cols), **(write or {}))

    def emb_pool(self, name="pool.parquet", n=12, ids=None, emb=None, probs=None):
        ids = [f"row-{i:03d}" for i in range(n)] if ids is None else ids
        emb = X[:n] if emb is None else emb
        probs = P[:n] if probs is None else probs
        return self.table(name, pa.table({"id": ids, "emb": list_col(emb), "probs": list_col(probs)}))

    def bytes(self, name, data: bytes):
        path = self.root / name
        path.write_bytes(data)
        return path

    def truncated(self, name="cut.parquet", keep=0.5):
        path = self.pool(name)
        data = path.read_bytes()
        path.write_bytes(data[:int(len(data) * keep)])
        return path

    def corrupt(self, name="bad.parquet", at=0.5, length=16):
        path = self.pool(name, write={"compression": "zstd"}) if name.endswith(".parquet") else self.pool(name)
        data = bytearray(path.read_bytes())
        start = int(len(data) * at)
        data[start:start + length] = b"\xa5" * length
        path.write_bytes(bytes(data))
        return path

    def directory(self, name, files):
        d = self.root / name
        d.mkdir()
        for fname, table in files.items():
            self.table(f"{name}/{fname}", table)
        return d

    def text(self, name, text):
        path = self.root / name
        path.write_text(text)
        return path

    def project(self, name="proj", n=12, **kw):
        """A project on a small pool with string ids, embeddings and probabilities."""
        from fastal.project import Project
        pool = self.emb_pool(f"{name}-pool.parquet", n=n)
        kw.setdefault("probs_column", "probs")
        kw.setdefault("embedding_column", "emb")
        Project.init(self.root / name, pool, "id", progress=None, **kw).close()
        return self.root / name

    def open(self, name="proj", **kw):
        from fastal.project import Project
        return Project(self.project(name, **kw))

    def labels_csv(self, name, ids, labels):
        lines = ["id,label"] + [f"{i},{v}" for i, v in zip(ids, labels)]
        return self.text(name, "\n".join(lines) + "\n")


# ------------------------------------------------------------------------------ checks
def is_selection(k, n=None, exclude=()):
    def check(sel):
        assert len(sel) == k and np.unique(sel.indices).size == k, sel
        if n is not None:
            assert sel.indices.min() >= 0 and sel.indices.max() < n
        assert not np.isin(sel.indices, list(exclude)).any()
    return check


def equals(expected, rtol=1e-6):
    def check(out):
        np.testing.assert_allclose(np.asarray(out, dtype=np.float64), expected, rtol=rtol, atol=1e-6)
    return check


def indices_are(expected):
    def check(sel):
        np.testing.assert_array_equal(sel.indices, expected)
    return check


def ok_result(result):
    assert result is not None


def holds(predicate):
    """A check that ``predicate(result)`` is true (the result is shown when it is not)."""
    def check(result):
        assert predicate(result), result
    return check


def open_project(directory, **kw):
    from fastal.project import Project
    return Project(directory, **kw)


# ------------------------------------------------------------------------------- cases
CASES: list[Case] = []


def case(id, call, raises, match="", check=None, cli=False):
    CASES.append(Case(id, call, raises, match, check, cli))


# --- fastal.score / fastal.top_k: in-memory arrays
score, top_k = fastal.score, fastal.top_k
case("score-1d", lambda f: score(P[0], "margin"), D, "2-D")
case("score-3d-uncertainty", lambda f: score(MEMBERS, "entropy"), D, "2-D")
case("score-empty", lambda f: score(np.empty((0, 3)), "margin"), D, "empty")
case("score-one-class", lambda f: score(np.ones((4, 1)), "margin"), D, "at least 2 classes")
case("score-zero-columns", lambda f: score(np.empty((4, 0)), "entropy"), D, "at least 2 classes")
case("score-nan", lambda f: score(nan_at(P), "margin"), D, "row 3")
case("score-inf", lambda f: score(nan_at(P, value=np.inf), "entropy"), D, "row 3")
case("score-neg-inf", lambda f: score(nan_at(P, value=-np.inf), "ratio"), D, "row 3")
case("score-negative-prob", lambda f: score(np.array([[1.2, -0.2], [0.5, 0.5]]), "margin"), D, "negative")
case("score-sum-not-one", lambda f: score(P * 2, "entropy"), D, "sums to")
case("score-logits-as-probs", lambda f: score(X[:, :3] * 10, "margin"), D, "from_logits")
case("score-complex", lambda f: score(P.astype(np.complex64), "margin"), D, "dtype")
case("score-bool", lambda f: score(np.eye(3, dtype=bool), "margin"), D, "dtype")
case("score-strings", lambda f: score(np.array([["a", "b"], ["c", "d"]]), "margin"), D, "dtype")
case("score-ragged-list", lambda f: score([[0.5, 0.5], [1.0]], "margin"), D, "could not be read as an array")
case("score-none", lambda f: score(None, "margin"), D, "")
case("score-dict", lambda f: score({"a": 1}, "margin"), D, "")
case("score-scalar", lambda f: score(3.0, "margin"), D, "2-D")
case("score-unknown-method", lambda f: score(P, "bogus"), A, "method must be one of")
case("score-method-int", lambda f: score(P, 3), A, "method")
case("score-method-none", lambda f: score(P, None), A, "method")
case("score-chunk-rows-zero", lambda f: score(P, "margin", chunk_rows=0), A, "chunk_rows must be >= 1")
case("score-chunk-rows-bool", lambda f: score(P, "margin", chunk_rows=True), A, "chunk_rows")
case("score-chunk-rows-float", lambda f: score(P, "margin", chunk_rows=2.5), A, "chunk_rows")
case("score-chunk-rows-negative", lambda f: score(P, "margin", chunk_rows=-3), A, "chunk_rows")
case("score-out-wrong-shape", lambda f: score(P, "margin", out=np.empty(5, np.float32)), A, "out")
case("score-out-float64", lambda f: score(P, "margin", out=np.empty(12)), A, "out")
case("score-out-readonly",
     lambda f: score(P, "margin", out=np.lib.stride_tricks.as_strided(np.empty(12, np.float32), writeable=False)),
     A, "out")
case("score-column-on-ndarray", lambda f: score(P, "margin", column="probs"), A, "column/id_column")
case("top_k-id-column-on-ndarray", lambda f: top_k(P, 2, "margin", id_column="id"), A, "column/id_column")
case("score-logits-inf", lambda f: score(nan_at(X, value=np.inf), "margin", from_logits=True), D, "finite")
case("score-logits-nan", lambda f: score(nan_at(X), "entropy", from_logits=True), D, "finite")
# valid but extreme: logits at +-3e38 (near float32 max) must give the exact scores
case("score-logits-3e38-margin",
     lambda f: score(np.array([[3e38, -3e38], [-3e38, 3e38], [3e38, 3e38]], np.float32), "margin",
                     from_logits=True),
     None, check=equals([0.0, 0.0, 1.0]))
case("score-logits-3e38-entropy",
     lambda f: score(np.array([[3e38, -3e38, 0], [3e38, 3e38, 3e38]], np.float32), "entropy",
                     from_logits=True),
     None, check=equals([0.0, np.log(3)]))
case("score-logits-3e38-float64",
     lambda f: score(np.array([[3e38, -3e38], [-3e38, -3e38]]), "least_confidence", from_logits=True),
     None, check=equals([0.0, 0.5]))
case("score-logits-1e308-float64",
     lambda f: score(np.array([[1e308, -1e308], [-1e308, -1e308]]), "ratio", from_logits=True),
     None, check=equals([0.0, 1.0]))
case("score-float16", lambda f: score(P.astype(np.float16), "margin"), None,
     check=equals(1 - np.diff(np.sort(P.astype(np.float16).astype(np.float32), 1)[:, -2:], axis=1)[:, 0],
                  rtol=1e-3))
case("score-int-one-hot", lambda f: score(np.eye(3, dtype=np.int64), "entropy"), None,
     check=equals([0.0, 0.0, 0.0]))
case("score-tolerant-sum", lambda f: score(np.array([[0.5, 0.5 + 1e-7]]), "margin"), None,
     check=equals([1.0]))
case("top_k-k-zero", lambda f: top_k(P, 0, "margin"), A, "k must be >= 1")
case("top_k-k-negative", lambda f: top_k(P, -1, "margin"), A, "k must be >= 1")
case("top_k-k-huge", lambda f: top_k(P, 10**12, "margin"), A, "larger than the pool")
case("top_k-k-2**63", lambda f: top_k(P, 2**63, "margin"), A, "larger than the pool")
case("top_k-k-float", lambda f: top_k(P, 2.0, "margin"), A, "k must be a positive integer")
case("top_k-k-bool", lambda f: top_k(P, True, "margin"), A, "k must be a positive integer")
case("top_k-k-string", lambda f: top_k(P, "3", "margin"), A, "k must be a positive integer")
case("top_k-k-none", lambda f: top_k(P, None, "margin"), A, "k must be a positive integer")
case("top_k-k-numpy-int", lambda f: top_k(P, np.int64(3), "margin"), None, check=is_selection(3, 12))
case("top_k-k-equals-n", lambda f: top_k(P, 12, "entropy"), None, check=is_selection(12, 12))
case("top_k-all-ties", lambda f: top_k(np.full((6, 2), 0.5), 3, "margin", chunk_rows=2), None,
     check=indices_are([0, 1, 2]))
case("top_k-empty", lambda f: top_k(np.empty((0, 2)), 1, "margin"), D, "empty")
case("top_k-nan-late-chunk", lambda f: top_k(nan_at(P, 11, 0), 2, "margin", chunk_rows=4), D, "row 11")

# --- committee methods
case("committee-2d-probs", lambda f: score(P, "bald"), D, "several models")
case("committee-one-member", lambda f: score(MEMBERS[:1], "bald"), D, "at least 2 members")
case("committee-empty-list", lambda f: score([], "bald"), D, "")
case("committee-mismatched-rows", lambda f: score([MEMBERS[0], MEMBERS[1][:5]], "kl_max"), D, "same shape")
case("committee-mismatched-classes", lambda f: score([MEMBERS[0], MEMBERS[1][:, :2]], "bald"), D, "same shape")
case("committee-mismatched-dtypes", lambda f: score([MEMBERS[0], MEMBERS[1].astype(np.float32)], "bald"), D,
     "same dtype")
case("committee-members-nan", lambda f: score(np.stack([MEMBERS[0], nan_at(MEMBERS[1])]), "bald"), D, "row 3")
case("committee-members-not-probs", lambda f: score(MEMBERS * 3, "consensus_entropy"), D, "")
case("committee-one-class", lambda f: score(np.ones((3, 4, 1)), "bald"), D, "at least 2 classes")
case("committee-4d", lambda f: score(np.ones((2, 3, 4, 2)) / 2, "bald"), D, "3-D")
case("committee-empty-rows", lambda f: score(np.empty((3, 0, 2)), "bald"), D, "no rows")
case("votes-negative", lambda f: score(VOTES - 1, "vote_entropy"), D, "votes must be class labels >= 0")
case("votes-too-large", lambda f: score(VOTES, "vote_entropy", n_classes=2), D, "labels must be in [0, 2)")
case("votes-n-classes-one", lambda f: score(VOTES, "vote_entropy", n_classes=1), A, "n_classes")
case("votes-n-classes-float", lambda f: score(VOTES, "vote_entropy", n_classes=2.5), A, "n_classes")
case("votes-from-logits", lambda f: score(VOTES, "vote_entropy", from_logits=True), A, "from_logits")
case("n-classes-with-probs", lambda f: score(MEMBERS, "bald", n_classes=3), A, "n_classes applies")
case("committee-std-nan", lambda f: score(nan_at(X.T[:3], 1, 3), "committee_std"), D, "finite")
case("committee-std-overflow", lambda f: score(np.array([[1e308, -1e308], [-1e308, 1e308]]), "committee_std"),
     D, "overflow")
case("committee-std-from-logits", lambda f: score(X.T[:3], "committee_std", from_logits=True), A, "from_logits")
case("egl-without-model", lambda f: score(P, "expected_gradient_length"), A, "LinearHead")
case("committee-logits-3e38", lambda f: score(np.array([[[3e38, -3e38]], [[-3e38, 3e38]]], np.float32),
                                              "vote_entropy", from_logits=True),
     None, check=equals([np.log(2)]))
case("committee-identical-members", lambda f: score(np.stack([P, P, P]), "bald"), None,
     check=equals(np.zeros(12)))

# --- fastal.select: every strategy
select = fastal.select
HYBRID = {name for name, s in fastal.STRATEGIES.items() if set(s.needs) == {"probs", "embeddings"}}


def select_args(strategy):
    if strategy in HYBRID:
        return X, {"probs": P}
    needs = set(fastal.STRATEGIES[strategy].needs)
    return (P if needs == {"probs"} else X), {}


for _name in fastal.STRATEGIES:
    def _k0(f, s=_name):
        data, kw = select_args(s)
        return select(data, 0, s, **kw)

    def _khuge(f, s=_name):
        data, kw = select_args(s)
        return select(data, 10**9, s, **kw)

    def _empty(f, s=_name):
        data, kw = select_args(s)
        kw = {k: v[:0] for k, v in kw.items()}
        return select(data[:0], 1, s, **kw)

    def _nan(f, s=_name):
        data, kw = select_args(s)
        return select(nan_at(data), 2, s, **kw)

    def _all_labeled(f, s=_name):
        data, kw = select_args(s)
        return select(data, 1, s, labeled=np.arange(12), **kw)

    case(f"select-{_name}-k-zero", _k0, A, "k")
    case(f"select-{_name}-k-huge", _khuge, A, "larger than")
    case(f"select-{_name}-empty", _empty, D, "")
    case(f"select-{_name}-all-labeled", _all_labeled, A, "labeled")
    if _name != "random":
        case(f"select-{_name}-nan", _nan, D, "row 3")


def _valid_dup(s):
    def call(f):
        data = np.ones((10, 3)) if s not in HYBRID else np.ones((10, 3))
        kw = {"probs": np.full((10, 2), 0.5)} if s in HYBRID else {}
        if set(fastal.STRATEGIES[s].needs) == {"probs"}:
            data = np.full((10, 2), 0.5)
        return select(data, 4, s, labeled=[0], **kw)
    return call


for _name in fastal.STRATEGIES:  # all-duplicate rows: still k distinct unlabeled picks
    case(f"select-{_name}-all-duplicates", _valid_dup(_name), None, check=is_selection(4, 10, exclude=[0]))

case("select-unknown-strategy", lambda f: select(X, 2, "bogus"), A, "strategy must be one of")
case("select-strategy-int", lambda f: select(X, 2, 7), A, "strategy")
case("select-unknown-option", lambda f: select(X, 2, "kcenter", beta=3), A, "does not take")
case("select-hybrid-without-probs", lambda f: select(X, 2, "badge"), A, "needs class probabilities")
case("select-probs-rows-mismatch", lambda f: select(X, 2, "badge", probs=P[:5]), D, "rows")
case("select-labeled-out-of-range", lambda f: select(P, 2, "margin", labeled=[0, 12]), D, "[0, 12)")
case("select-labeled-negative", lambda f: select(P, 2, "margin", labeled=[-1]), D, "[0, 12)")
case("select-labeled-float", lambda f: select(P, 2, "margin", labeled=[0.5]), D, "integer")
case("select-labeled-2d", lambda f: select(P, 2, "margin", labeled=[[0, 1]]), D, "1-D")
case("select-labeled-mask-length", lambda f: select(P, 2, "margin", labeled=np.zeros(5, bool)), D, "length 12")
case("select-labeled-strings", lambda f: select(P, 2, "margin", labeled=["a"]), D, "integer")
case("select-labeled-duplicates", lambda f: select(P, 11, "margin", labeled=[3, 3]), None,
     check=is_selection(11, 12, exclude=[3]))
case("select-k-leaves-none", lambda f: select(P, 3, "entropy", labeled=np.arange(10)), A, "larger than")
case("select-seed-string", lambda f: select(X, 2, "random", seed="x"), A, "seed")
case("select-seed-negative", lambda f: select(X, 2, "random", seed=-1), A, "seed")
case("select-seed-float", lambda f: select(X, 2, "kcenter", seed=0.5), A, "seed")
case("select-beta-below-one", lambda f: select(X, 2, "uncertain_kcenter", probs=P, beta=0.5), A, "beta")
case("select-method-bogus", lambda f: select(X, 2, "weighted_kcenter", probs=P, method="bogus"), A, "method")
case("select-probs-nan", lambda f: select(X, 2, "badge", probs=nan_at(P)), D, "row 3")
case("select-probs-not-simplex", lambda f: select(X, 2, "uncertain_kcenter", probs=P * 2), D, "")
case("select-probs-1d", lambda f: select(X, 2, "badge", probs=P[:, 0]), D, "2-D")
case("select-scalar-data", lambda f: select(3.0, 1, "random"), D, "")
case("select-3d-data", lambda f: select(MEMBERS, 2, "kcenter"), D, "2-D")
case("select-complex-data", lambda f: select(X.astype(np.complex64), 2, "kcenter"), D, "dtype")
case("select-huge-embeddings", lambda f: select(np.array([[1e30, 0], [0, 1e30], [0, 0]], np.float32), 2,
                                                 "kcenter"),
     D, "float32's range")

# --- fastal.kcenter
kcenter = fastal.kcenter
case("kcenter-1d", lambda f: kcenter(X[0], 1), D, "2-D")
case("kcenter-no-rows", lambda f: kcenter(np.empty((0, 4)), 1), D, "")
case("kcenter-no-columns", lambda f: kcenter(np.empty((4, 0)), 1), D, "")
case("kcenter-nan", lambda f: kcenter(nan_at(X), 2), D, "row 3")
case("kcenter-inf", lambda f: kcenter(nan_at(X, value=-np.inf), 2), D, "row 3")
case("kcenter-metric-bogus", lambda f: kcenter(X, 2, metric="manhattan"), A, "metric")
case("kcenter-cosine-zero-row", lambda f: kcenter(np.vstack([X, np.zeros((1, 4))]), 2, metric="cosine"), D,
     "zero vector")
case("kcenter-k-huge", lambda f: kcenter(X, 13), A, "k must be <=")
case("kcenter-k-zero", lambda f: kcenter(X, 0), A, "k")
case("kcenter-weights-negative", lambda f: kcenter(X, 2, weights=-np.ones(12)), D, "non-negative")
case("kcenter-weights-nan", lambda f: kcenter(X, 2, weights=np.where(np.arange(12) == 3, np.nan, 1.0)), D, "finite")
case("kcenter-weights-shape", lambda f: kcenter(X, 2, weights=np.ones(5)), D, "shape (12,)")
case("kcenter-weights-complex", lambda f: kcenter(X, 2, weights=np.ones(12, complex)), D, "real")
case("kcenter-labeled-embeddings-d", lambda f: kcenter(X, 2, labeled=np.ones((3, 5))), D, "4 columns")
case("kcenter-labeled-3d", lambda f: kcenter(X, 2, labeled=np.ones((1, 3, 4))), D, "")
case("kcenter-labeled-out-of-range", lambda f: kcenter(X, 2, labeled=[12]), D, "[0, 12)")
case("kcenter-labeled-all", lambda f: kcenter(X, 1, labeled=np.ones(12, bool)), A, "nothing left")
case("kcenter-labeled-embeddings-nan", lambda f: kcenter(X, 2, labeled=nan_at(X[:4], 0, 0)), D, "")
case("kcenter-all-duplicates", lambda f: kcenter(np.ones((9, 3)), 4), None, check=is_selection(4, 9))
case("kcenter-all-duplicates-cosine", lambda f: kcenter(np.ones((9, 3)), 3, metric="cosine"), None,
     check=is_selection(3, 9))
case("kcenter-one-row", lambda f: kcenter(np.ones((1, 3)), 1), None, check=indices_are([0]))
case("kcenter-bool", lambda f: kcenter(np.eye(4, dtype=bool), 4), None, check=is_selection(4, 4))
case("kcenter-huge-values", lambda f: kcenter(np.array([[3e38, 0], [0, 3e38], [0, 0]], np.float32), 3),
     D, "float32's range")
case("kcenter-string-data", lambda f: kcenter(np.array([["a"]]), 1), D, "dtype")

# --- fastal.models
LinearHead, Committee, ProbaModel = models.LinearHead, models.Committee, models.ProbaModel
case("head-w-1d", lambda f: LinearHead(np.ones(3)), D, "2-D")
case("head-w-one-class", lambda f: LinearHead(np.ones((4, 1))), D, "2 classes")
case("head-w-nan", lambda f: LinearHead(nan_at(W, 0, 0)), D, "NaN")
case("head-w-complex", lambda f: LinearHead(W.astype(complex)), D, "")
case("head-b-shape", lambda f: LinearHead(W, np.ones(4)), D, "b must have shape (3,)")
case("head-classes-length", lambda f: LinearHead(W, classes=["a", "b"]), D, "one label per column")
case("committee-one-head", lambda f: Committee([LinearHead(W)]), A, "at least 2 members")
case("committee-no-heads", lambda f: Committee([]), A, "at least 2 members")
case("committee-head-shapes", lambda f: Committee([LinearHead(W), LinearHead(W[:, :2])]), D, "same (features")
case("committee-bias-mix", lambda f: Committee([LinearHead(W), LinearHead(W, np.ones(3))]), D, "bias")
case("committee-kinds-mix", lambda f: Committee([LinearHead(W), ProbaModel(_Proba())]), A, "must all be LinearHead")
case("committee-classes-mismatch",
     lambda f: Committee([LinearHead(W, classes=["a", "b", "c"]), LinearHead(W, classes=["c", "b", "a"])]), D,
     "same classes")
case("committee-not-models", lambda f: Committee([1, 2]), A, "")
case("proba-model-no-predict-proba", lambda f: ProbaModel(object()), A, "predict_proba")
case("head-from-sklearn-unfitted", lambda f: LinearHead.from_sklearn(object()), A, "coef_")
case("model-features-mismatch", lambda f: score(X[:, :3], "margin", model=LinearHead(W)), D, "features")
case("model-x-nan", lambda f: score(nan_at(X), "entropy", model=LinearHead(W)), D, "row 3")
case("model-x-1d", lambda f: score(X[0], "entropy", model=LinearHead(W)), D, "2-D")
case("model-x-empty", lambda f: score(X[:0], "entropy", model=LinearHead(W)), D, "empty")
case("model-from-logits", lambda f: score(X, "margin", model=LinearHead(W), from_logits=True), A, "from_logits")
case("model-not-a-model", lambda f: score(X, "margin", model=object()), A, "model must be")
case("model-method-bogus", lambda f: score(X, "bogus", model=LinearHead(W)), A, "method")
case("model-committee-method-on-head", lambda f: score(X, "bald", model=LinearHead(W)), A, "method")
case("model-overflow", lambda f: score(X * 1e300, "margin", model=LinearHead(W * 1e300)), D, "")
case("model-proba-bad-shape", lambda f: score(X, "margin", model=ProbaModel(_Proba(columns=1))), D, "shape")
case("model-committee-outputs-differ",
     lambda f: score(X, "bald", model=Committee([ProbaModel(_Proba()), ProbaModel(_Proba(columns=2))])), D, "")
case("model-huge-k", lambda f: top_k(X, 10**6, "margin", model=LinearHead(W)), A, "larger than the pool")
case("model-egl", lambda f: score(X, "expected_gradient_length", model=LinearHead(W)), None,
     check=holds(lambda out: out.shape == (12,) and np.isfinite(out).all()))
case("bootstrap-y-2d", lambda f: models.bootstrap_committee(X, Y[:, None], 3), D, "1-D")
case("bootstrap-y-length", lambda f: models.bootstrap_committee(X, Y[:5], 3), D, "one label per row")
case("bootstrap-one-member", lambda f: models.bootstrap_committee(X, Y, 1), A, "at least 2 members")
case("bootstrap-members-float", lambda f: models.bootstrap_committee(X, Y, 2.5), A, "n_members")
case("bootstrap-one-class", lambda f: models.bootstrap_committee(X, np.zeros(12, int), 3), D, "at least 2 classes")
case("bootstrap-x-nan", lambda f: models.bootstrap_committee(nan_at(X), Y, 3), D, "")


class _Proba:
    """A minimal classifier with predict_proba returning ``columns`` uniform columns."""

    def __init__(self, columns=3):
        self.columns = columns
        self.classes_ = np.arange(columns)

    def fit(self, X, y):
        return self

    def predict_proba(self, X):
        return np.full((np.asarray(X).shape[0], self.columns), 1 / self.columns)


# --- simulate / ActiveLoop / labels_saved
def _lr():
    from sklearn.linear_model import LogisticRegression
    return LogisticRegression(max_iter=50)


XS = np.random.default_rng(1).standard_normal((60, 3))
YS = (XS[:, 0] > 0).astype(int)


def sim(**kw):
    args = dict(X=XS, y=YS, X_test=XS[:20], y_test=YS[:20], estimator=_lr(), strategies=("random",),
                seed_size=4, batch_size=4, budget=12, repeats=1, progress=False)
    args.update(kw)
    return fastal.simulate(**args)


case("simulate-y-length", lambda f: sim(y=YS[:10]), D, "y must have shape (60,)")
case("simulate-test-mismatch", lambda f: sim(y_test=YS[:5]), D, "rows but y_test")
case("simulate-no-strategies", lambda f: sim(strategies=()), A, "at least one strategy")
case("simulate-duplicate-strategies", lambda f: sim(strategies=("random", "random")), A, "distinct")
case("simulate-unknown-strategy", lambda f: sim(strategies=("bogus",)), A, "must be one of")
case("simulate-seed-negative", lambda f: sim(seed=-1), A, "seed")
case("simulate-seed-size-zero", lambda f: sim(seed_size=0), A, "seed_size")
case("simulate-batch-size-huge", lambda f: sim(batch_size=10**9), A, "batch_size")
case("simulate-budget-string", lambda f: sim(budget="10"), A, "budget")
case("simulate-repeats-zero", lambda f: sim(repeats=0), A, "repeats")
case("simulate-x-1d", lambda f: sim(X=XS[:, 0]), D, "2-D")
case("simulate-seed-strategy-bogus", lambda f: sim(seed_strategy="bogus"), A, "seed_strategy")
case("simulate-result-unknown-strategy", lambda f: sim().curve("margin"), A, "was not simulated")


def loop(**kw):
    args = dict(model=_Proba(2), X=XS, batch_size=4, seed_size=4)
    args.update(kw)
    return fastal.ActiveLoop(**args)


def _teach_foreign(f):
    lp = loop()
    batch = lp.next_batch()
    outside = np.setdiff1d(np.arange(60), batch.positions)[0]
    return lp.teach([outside], [0])


def _teach_twice(f):
    lp = loop()
    batch = lp.next_batch()
    lp.teach(batch.positions, np.zeros(len(batch.positions), int))
    return lp.teach(batch.positions[:1], [1])


def _next_without_labels(f):
    lp = loop()
    lp.next_batch()
    return lp.next_batch()


def _teach_bad_labels_shape(f):
    lp = loop()
    batch = lp.next_batch()
    return lp.teach(batch.positions, [0])


def _teach_unknown_class(f):
    lp = loop(classes=[0, 1])
    batch = lp.next_batch()
    return lp.teach(batch.positions, np.full(len(batch.positions), 7))


case("loop-x-empty", lambda f: loop(X=XS[:0]), D, "no rows")
case("loop-ids-length", lambda f: loop(ids=np.arange(5)), D, "ids must have shape (60,)")
case("loop-embeddings-shape", lambda f: loop(embeddings=np.ones((5, 2))), D, "embeddings must have shape")
case("loop-labeled-not-pair", lambda f: loop(labeled=[1, 2, 3]), A, "pair")
case("loop-labeled-out-of-range", lambda f: loop(labeled=([0, 99], [0, 1])), D, "not in the pool")
case("loop-labeled-duplicated", lambda f: loop(labeled=([0, 0], [0, 1])), D, "more than once")
case("loop-labeled-float-positions", lambda f: loop(labeled=([0.5], [0])), D, "integer")
case("loop-labels-length", lambda f: loop(labeled=([0, 1], [0])), D, "labels must have shape (2,)")
case("loop-batch-size-huge", lambda f: loop(batch_size=61), A, "batch_size")
case("loop-batch-size-zero", lambda f: loop(batch_size=0), A, "batch_size")
case("loop-strategy-bogus", lambda f: loop(strategy="bogus"), A, "strategy must be one of")
case("loop-model-not-estimator", lambda f: loop(model=object()), A, "model must be")
case("loop-model-bad-tuple", lambda f: loop(model=(1, 2, 3)), A, "model as a tuple")
case("loop-validation-not-pair", lambda f: loop(validation=XS), A, "pair")
case("loop-validation-mismatch", lambda f: loop(validation=(XS, YS[:3])), D, "rows but")
case("loop-metric-bogus", lambda f: loop(metric="f1"), A, "metric")
case("loop-target-without-validation", lambda f: loop(target=0.9), A, "validation")
case("loop-target-string", lambda f: loop(validation=(XS, YS), target="high"), A, "target must be a number")
case("loop-uncertainty-method-bogus", lambda f: loop(uncertainty_method="bogus", uncertainty_threshold=0.1), A,
     "uncertainty_method")
case("loop-seed-strategy-stratified", lambda f: loop(seed_strategy="stratified"), A, "seed_strategy")
case("loop-model-strategy-no-seed", lambda f: loop(seed_size=0, strategy="margin"), A, "needs a model")
case("loop-teach-foreign-row", _teach_foreign, D, "not in a batch")
case("loop-teach-twice", _teach_twice, D, "already labeled")
case("loop-next-without-labels", _next_without_labels, A, "no label arrived")
case("loop-teach-labels-shape", _teach_bad_labels_shape, D, "labels must have shape")
case("loop-teach-unknown-class", _teach_unknown_class, D, "not one of the declared classes")
labels_saved = fastal.labels_saved
CURVES = {"random": np.array([0.5, 0.6, 0.7]), "margin": np.array([0.6, 0.7, 0.8])}
case("labels-saved-decreasing", lambda f: labels_saved([30, 20, 10], CURVES, [20]), D, "strictly increasing")
case("labels-saved-no-baseline", lambda f: labels_saved([10, 20, 30], {"margin": CURVES["margin"]}, [20]), A,
     "baseline")
case("labels-saved-budget-outside", lambda f: labels_saved([10, 20, 30], CURVES, [99]), A, "outside")
case("labels-saved-curve-shape", lambda f: labels_saved([10, 20, 30], {**CURVES, "x": np.ones(2)}, [20]), D,
     "shape")

# --- io: files and tables (through the public verbs)
def t(**cols):
    return pa.table(cols)


case("file-missing", lambda f: score(f.path("nope.parquet"), "margin"), F, "does not exist")
case("file-empty", lambda f: score(f.bytes("empty.parquet", b""), "margin"), F, "neither")
case("file-csv", lambda f: score(f.text("pool.csv", "a,b\n0.5,0.5\n"), "margin"), F, "neither")
case("file-json", lambda f: top_k(f.text("pool.json", json.dumps({"probs": [[0.5, 0.5]]})), 1, "margin"), F,
     "neither")
case("file-npy", lambda f: score(_npy(f), "margin"), F, "neither")
case("file-zip", lambda f: score(f.bytes("pool.zip", b"PK\x03\x04" + b"\0" * 60), "margin"), F, "neither")
case("file-png", lambda f: score(f.bytes("pool.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 60), "margin"), F, "neither")
case("file-sqlite", lambda f: score(_sqlite(f), "margin"), F, "neither")
case("parquet-magic-only", lambda f: score(f.bytes("m.parquet", b"PAR1"), "margin"), F, "Parquet")
case("parquet-magic-both-ends", lambda f: score(f.bytes("m.parquet", b"PAR1" + b"\0" * 40 + b"PAR1"), "margin"),
     F, "Parquet")
case("parquet-truncated-half", lambda f: score(f.truncated(keep=0.5), "margin"), F, "Parquet")
case("parquet-truncated-tail", lambda f: score(f.truncated(keep=0.97), "margin"), F, "Parquet")
case("parquet-truncated-top-k", lambda f: top_k(f.truncated(keep=0.3), 1, "margin"), F, "Parquet")
case("parquet-corrupt-footer", lambda f: score(f.corrupt(at=0.9), "margin"), F, "")
# no page checksums in the file: a corrupt data page decodes to values that are then refused
case("parquet-corrupt-pages", lambda f: score(f.corrupt(at=0.1, length=64), "margin"), D, "sums to")
case("ipc-truncated", lambda f: score(_cut(f.pool("p.arrow"), 0.6), "margin"), F, "Arrow IPC")
case("ipc-stream-truncated", lambda f: score(_cut(f.pool("p.arrows"), 0.6), "margin"), F, "Arrow IPC")
case("ipc-magic-only", lambda f: score(f.bytes("m.arrow", b"ARROW1\0\0"), "margin"), F, "Arrow IPC")
case("ipc-corrupt-footer", lambda f: score(f.corrupt("c.arrow", at=0.9, length=8), "margin"), F, "")
case("dir-empty", lambda f: score(f.directory("d", {}), "margin"), F, "holds no Parquet")
case("dir-only-foreign", lambda f: (f.directory("d", {}), f.text("d/a.csv", "x"), score(f.path("d"), "margin"))[2],
     F, "holds no Parquet")
case("dir-widths-disagree",
     lambda f: score(f.directory("d", {"a.parquet": t(p=list_col(P)), "b.parquet": t(p=list_col(P[:, :2]))}),
                     "margin"), D, "disagree")
case("dir-one-corrupt",
     lambda f: score((f.directory("d", {"a.parquet": t(p=list_col(P))}),
                      f.bytes("d/b.parquet", b"PAR1garbagePAR1"))[0], "margin"), F, "b.parquet")
case("dir-ids-disagree",
     lambda f: top_k(f.directory("d", {"a.parquet": t(p=list_col(P), id=list(range(12))),
                                       "b.parquet": t(p=list_col(P), id=[str(i) for i in range(12)])}),
                     2, "margin", id_column="id"), None,
     check=lambda sel: np.testing.assert_array_equal(sel.ids.astype(str), ["9", "9"]))
case("table-no-list-column", lambda f: score(f.table("x.parquet", t(a=[0.5], b=[0.5])), "margin"), D,
     "no list column")
case("table-two-list-columns", lambda f: score(f.table("x.parquet", t(a=list_col(P), b=list_col(P))), "margin"), D,
     "several list columns")
case("table-column-missing", lambda f: score(f.pool(), "margin", column="nope"), D, "column 'nope' not found")
case("table-column-int", lambda f: score(f.pool(), "margin", column=5), A, "column must be a name")
case("table-column-empty-list", lambda f: score(f.pool(), "margin", column=[]), A, "column must be a name")
case("table-id-column-missing", lambda f: top_k(f.pool(), 2, "margin", id_column="id"), D, "id_column 'id' not found")
case("table-id-column-float", lambda f: top_k(f.pool(ids=np.arange(12.0)), 2, "margin", id_column="id"), D,
     "integer or string")
case("table-id-null", lambda f: top_k(f.pool(ids=pa.array([1, None] + list(range(2, 12)))), 2, "margin",
                                      id_column="id"), D, "null at row 1")
case("table-id-duplicated", lambda f: top_k(f.pool(ids=[7] * 12), 2, "margin", id_column="id"), None,
     check=lambda sel: np.testing.assert_array_equal(sel.ids, [7, 7]))
def _duplicate_names(f, suffix):
    probs = pa.FixedSizeListArray.from_arrays(pa.array(np.full(24, 0.5)), 2)
    table = pa.Table.from_arrays([probs, probs, pa.array(range(12))], names=["p", "p", "id"])
    return f.table("dup" + suffix, table)


for _suffix in (".parquet", ".arrow"):
    case(f"table-duplicate-column-names{_suffix}",
         lambda f, s=_suffix: score(_duplicate_names(f, s), "margin", column="p"), D,
         "appears 2 times")
case("table-duplicate-column-names-in-memory",
     lambda f: top_k(pa.Table.from_arrays([pa.array(range(3))] * 2 + [
         pa.FixedSizeListArray.from_arrays(pa.array(np.full(6, 0.5)), 2)],
         names=["id", "id", "p"]), 1, "margin", column="p", id_column="id"), D, "appears 2 times")
case("table-string-list", lambda f: score(f.table("s.parquet", t(p=pa.array([["a", "b"]]))), "margin"), D,
     "must hold floats")
case("table-bool-list", lambda f: score(f.table("s.parquet", t(p=pa.array([[True, False]]))), "margin"), D,
     "")
case("table-scalar-column-not-list", lambda f: score(f.table("s.parquet", t(a=[0.5], b=[0.5])), "margin",
                                                     column="a"), D, "list<float>")
case("table-string-scalar-columns", lambda f: score(f.table("s.parquet", t(a=["x"], b=["y"])), "margin",
                                                    column=["a", "b"]), D, "numeric")
case("table-mixed-list-scalar", lambda f: score(f.table("s.parquet", t(a=list_col(P), b=np.ones(12))), "margin",
                                                column=["a", "b"]), A, "mix list and scalar")
case("table-null-row", lambda f: score(f.table("n.parquet", t(p=pa.array([[0.5, 0.5], None, [0.2, 0.8]]))),
                                       "margin"), D, "null at row 1")
case("table-null-value", lambda f: score(f.table("n.parquet", t(p=pa.array([[0.5, 0.5], [None, 0.8]]))),
                                         "margin"), D, "null value at row 1")
case("table-null-scalar", lambda f: score(f.table("n.parquet", t(a=[0.5, None], b=[0.5, 0.5])), "margin",
                                          column=["a", "b"]), D, "null at row 1")
case("table-ragged", lambda f: score(f.table("r.parquet", t(p=pa.array([[0.5, 0.5], [0.2, 0.3, 0.5]]))),
                                     "margin"), D, "same length")
case("table-zero-rows", lambda f: score(f.table("z.parquet", t(p=list_col(P[:0]))), "margin"), D, "empty")
case("table-zero-rows-select", lambda f: select(f.table("z.parquet", t(p=list_col(X[:0]))), 1, "kcenter"), D, "")
case("table-nan-in-file", lambda f: score(f.pool(probs=nan_at(P, 7, 0)), "margin", chunk_rows=3), D, "row 7")
case("table-in-memory-nulls", lambda f: score(t(p=pa.array([[0.5, 0.5], None])), "margin"), D, "null")
case("table-record-batch-column-missing",
     lambda f: score(pa.RecordBatch.from_pydict({"p": list_col(P)}), "margin", column="q"), D, "not found")
case("ipc-null-ids", lambda f: top_k(f.pool("i.arrow", ids=pa.array([None] * 12, pa.int64())), 1, "margin",
                                     id_column="id"), D, "null at row 0")
case("parquet-committee-one-column", lambda f: score(f.pool(), "bald"), A, "column=['member0'")
case("parquet-committee-mismatched-members",
     lambda f: score(f.table("c.parquet", t(m0=list_col(P), m1=list_col(P[:, :2]))), "bald",
                     column=["m0", "m1"]), D, "")
case("parquet-uncertainty-two-members",
     lambda f: score(f.table("c.parquet", t(m0=list_col(P), m1=list_col(P))), "margin", column=["m0", "m1"]), A,
     "committee method")
case("parquet-logits-3e38", lambda f: score(f.pool(probs=np.array([[3e38, -3e38], [3e38, 3e38]], np.float32)),
                                            "margin", from_logits=True), None, check=equals([0.0, 1.0]))
case("parquet-valid-ids-top-k", lambda f: top_k(f.pool(ids=[f"r{i}" for i in range(12)]), 12, "margin",
                                                id_column="id"), None, check=is_selection(12, 12))


def _npy(f):
    import io
    buf = io.BytesIO()
    np.save(buf, P)
    return f.bytes("pool.npy", buf.getvalue())


def _sqlite(f):
    path = f.path("pool.db")
    con = sqlite3.connect(path)
    con.execute("create table t (x)")
    con.commit()
    con.close()
    return path


def _cut(path, keep):
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:int(len(data) * keep)])
    return path


# --- the CLI: main(argv) returns 2 with one line "fastal: error: ..."
def cli(id, argv, raises, match=""):
    case("cli-" + id, argv, raises, match, cli=True)


cli("score-missing", lambda f: ["score", str(f.path("nope.parquet")), "--k", "2"], F, "does not exist")
cli("score-truncated", lambda f: ["score", str(f.truncated()), "--k", "2"], F, "Parquet")
cli("score-foreign", lambda f: ["score", str(f.text("a.csv", "x,y\n")), "--k", "2"], F, "neither")
cli("score-k-zero", lambda f: ["score", str(f.pool()), "--k", "0"], A, "k must be >= 1")
cli("score-k-huge", lambda f: ["score", str(f.pool()), "--k", "1000000000000"], A, "larger than the pool")
cli("score-method-bogus", lambda f: ["score", str(f.pool()), "--k", "2", "--method", "bogus"], A, "method")
cli("score-out-suffix", lambda f: ["score", str(f.pool()), "--k", "2", "--out", str(f.path("o.txt"))], A, "--out")
cli("score-column-missing", lambda f: ["score", str(f.pool()), "--k", "2", "--column", "nope"], D, "not found")
cli("score-id-column-missing", lambda f: ["score", str(f.pool()), "--k", "2", "--id-column", "id"], D, "not found")
cli("score-chunk-rows-zero", lambda f: ["score", str(f.pool()), "--k", "2", "--chunk-rows", "0"], A, "chunk_rows")
cli("score-nan", lambda f: ["score", str(f.pool(probs=nan_at(P))), "--k", "2"], D, "row 3")
cli("score-null-ids", lambda f: ["score", str(f.pool(ids=pa.array([None] * 12, pa.string()))), "--k", "2",
                                 "--id-column", "id"], D, "null")
cli("score-out-dir-missing", lambda f: ["score", str(f.pool()), "--k", "2", "--out",
                                        str(f.path("no/such/dir/o.parquet"))], F, "")
cli("select-strategy-bogus", lambda f: ["select", str(f.pool()), "--k", "2", "--strategy", "bogus"], A, "strategy")
cli("select-labeled-missing", lambda f: ["select", str(f.pool()), "--k", "2", "--strategy", "margin",
                                         "--labeled", str(f.path("none.txt"))], F, "--labeled")
cli("select-labeled-garbage", lambda f: ["select", str(f.pool()), "--k", "2", "--strategy", "margin",
                                         "--labeled", str(f.text("l.txt", "one\ntwo\n"))], F, "--labeled")
cli("select-labeled-out-of-range", lambda f: ["select", str(f.pool()), "--k", "2", "--strategy", "margin",
                                              "--labeled", str(f.text("l.txt", "0\n99\n"))], D, "[0, 12)")
cli("select-option-unknown", lambda f: ["select", str(f.pool()), "--k", "2", "--strategy", "kcenter",
                                        "--option", "nope=1"], A, "")
cli("select-option-malformed", lambda f: ["select", str(f.pool()), "--k", "2", "--strategy", "kcenter",
                                          "--option", "nope"], A, "")
cli("select-k-huge", lambda f: ["select", str(f.pool()), "--k", "99", "--strategy", "kcenter"], A, "larger than")
cli("select-probs-column-missing", lambda f: ["select", str(f.emb_pool()), "--k", "2", "--strategy", "badge",
                                              "--column", "emb", "--probs-column", "nope"], D, "not found")
cli("select-corrupt", lambda f: ["select", str(f.corrupt(at=0.9)), "--k", "2", "--strategy", "kcenter"], F, "")
cli("init-pool-missing", lambda f: ["init", str(f.path("p")), "--pool", str(f.path("none.parquet")),
                                    "--id-column", "id", "--probs-column", "probs"], F, "")
cli("init-duplicated-ids", lambda f: ["init", str(f.path("p")), "--pool", str(f.emb_pool(ids=["a"] * 12)),
                                      "--id-column", "id", "--probs-column", "probs"], D, "duplicated")
cli("init-null-ids", lambda f: ["init", str(f.path("p")), "--pool",
                                str(f.emb_pool(ids=pa.array(["a", None] + [str(i) for i in range(10)]))),
                                "--id-column", "id", "--probs-column", "probs"], D, "null")
cli("init-id-column-missing", lambda f: ["init", str(f.path("p")), "--pool", str(f.emb_pool()),
                                         "--id-column", "nope", "--probs-column", "probs"], D, "no id column 'nope'")
cli("init-existing", lambda f: ["init", str(f.project()), "--pool", str(f.emb_pool("x.parquet")),
                                "--id-column", "id", "--probs-column", "probs"], A, "already a fastal project")
cli("init-truncated-pool", lambda f: ["init", str(f.path("p")), "--pool", str(f.truncated()),
                                      "--id-column", "id"], F, "Parquet")
cli("label-not-a-project", lambda f: ["label", str(f.root), str(f.text("l.csv", "id,label\n"))], F,
    "not a fastal project")
cli("label-file-missing", lambda f: ["label", str(f.project()), str(f.path("l.csv"))], F, "")
cli("label-unknown-ids", lambda f: ["label", str(f.project()), str(f.labels_csv("l.csv", ["zz"], ["a"]))], D, "")
cli("label-truncated-parquet", lambda f: ["label", str(f.project()), str(f.truncated("l.parquet"))], F, "")
cli("label-no-label-column", lambda f: ["label", str(f.project()), str(f.text("l.csv", "id,x\nrow-000,a\n"))],
    D, "label")
cli("requeue-round-missing", lambda f: ["requeue", str(f.project()), "--round", "9"], A, "")
cli("requeue-ids-file-missing", lambda f: ["requeue", str(f.project()), "--ids", str(f.path("ids.txt"))], F,
    "--ids")
cli("export-bad-suffix", lambda f: ["export", str(f.project()), "--out", str(f.path("x.txt"))], A, "")
cli("status-not-a-project", lambda f: ["status", str(f.root)], F, "not a fastal project")
cli("status-corrupt-ledger", lambda f: ["status", str(_corrupt_ledger(f))], L, "")
cli("status-foreign-ledger", lambda f: ["status", str(_foreign_ledger(f))], L, "")
cli("status-corrupt-marker", lambda f: ["status", str(_corrupt_marker(f))], L, "marker")
cli("status-ledger-missing", lambda f: ["status", str(_ledger_missing(f))], L, "no ledger")
cli("simulate-missing-file", lambda f: ["simulate", str(f.path("none.parquet")), "--label-column", "y",
                                        "--no-progress"], F, "")
cli("simulate-label-column-missing", lambda f: ["simulate", str(f.emb_pool()), "--label-column", "nope",
                                                "--no-progress"], D, "--label-column 'nope' is not a column")


def _ledger_path(project_dir):
    from fastal.project import _ledger
    return Path(project_dir) / _ledger.LEDGER_NAME


def _corrupt_ledger(f):
    d = f.project()
    path = _ledger_path(d)
    for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        extra.unlink(missing_ok=True)
    path.write_bytes(b"this is not a database" * 100)
    return d


def _foreign_ledger(f):
    d = _ledger_missing(f)
    con = sqlite3.connect(_ledger_path(d))
    con.execute("create table other (x)")
    con.commit()
    con.close()
    return d


def _corrupt_marker(f):
    from fastal.project import MARKER
    d = f.project()
    (d / MARKER).write_text("{not json")
    return d


def _ledger_missing(f):
    d = f.project()
    path = _ledger_path(d)
    for extra in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        extra.unlink(missing_ok=True)
    return d


# --- fastal.project.Project (the API behind the project commands)
def init(f, **kw):
    from fastal.project import Project
    pool = kw.pop("pool", None) or f.emb_pool()
    return Project.init(f.path("p"), pool, kw.pop("id_column", "id"), progress=None,
                        **{"probs_column": "probs", **kw})


def _project_select(f, *args, **kw):
    with f.open() as project:
        return project.select(*args, progress=None, **kw)


def _project_label(f, rows):
    with f.open() as project:
        return project.label(f.labels_csv("l.csv", [r[0] for r in rows], [r[1] for r in rows]), progress=None)


def _project_requeue(f, **kw):
    with f.open() as project:
        return project.requeue(**kw)


def _project_export(f, out):
    with f.open() as project:
        return project.export(f.path(out))


def _selected_then_label(f, rows_fn):
    with f.open() as project:
        batch = project.select(3, progress=None)
        path = f.labels_csv("l.csv", *rows_fn(batch.ids))
        return project.label(path, progress=None)


case("project-init-duplicated-ids", lambda f: init(f, pool=f.emb_pool(ids=["a", "a"] + [str(i) for i in range(10)])),
     D, "duplicated")
case("project-init-null-ids", lambda f: init(f, pool=f.emb_pool(ids=pa.array([None] * 12, pa.string()))), D, "null")
case("project-init-float-ids", lambda f: init(f, pool=f.emb_pool(ids=np.arange(12.0))), D, "")
case("project-init-id-column-missing", lambda f: init(f, id_column="nope"), D, "no id column 'nope'")
case("project-init-probs-column-missing", lambda f: init(f, probs_column="nope"), D, "column 'nope' not found")
case("project-init-embedding-column-missing", lambda f: init(f, embedding_column="nope"), D, "column 'nope' not found")
case("project-init-strategy-bogus", lambda f: init(f, strategy="bogus"), A, "strategy")
case("project-init-policy-bogus", lambda f: init(f, policy="bogus"), A, "policy")
case("project-init-pool-missing", lambda f: init(f, pool=f.path("none.parquet")), F, "")
case("project-init-pool-corrupt", lambda f: init(f, pool=f.corrupt(at=0.9)), F, "")
case("project-init-pool-empty", lambda f: init(f, pool=f.emb_pool(n=0, ids=pa.array([], pa.string()),
                                                                emb=np.empty((0, 4)), probs=np.empty((0, 3))) ),
     D, "")
case("project-open-missing", lambda f: open_project(f.path("none")), F, "")
case("project-open-corrupt-ledger", lambda f: open_project(_corrupt_ledger(f)), L, "")
case("project-open-foreign-ledger", lambda f: open_project(_foreign_ledger(f)), L, "")
case("project-select-k-zero", lambda f: _project_select(f, 0), A, "k")
case("project-select-k-huge", lambda f: _project_select(f, 10**9), A, "")
case("project-select-k-string", lambda f: _project_select(f, "3"), A, "k")
case("project-select-strategy-bogus", lambda f: _project_select(f, 2, strategy="bogus"), A, "strategy")
case("project-select-outputs-missing", lambda f: _project_select(f, 2, outputs=f.path("none.parquet")), F, "")
case("project-select-outputs-truncated", lambda f: _project_select(f, 2, outputs=f.truncated("o.parquet")), F, "")
case("project-select-outputs-wrong-ids",
     lambda f: _project_select(f, 2, outputs=f.pool("o.parquet", ids=[f"zz{i}" for i in range(12)]),
                               outputs_column="probs"), D, "")
case("project-select-outputs-duplicated-ids",
     lambda f: _project_select(f, 2, outputs=f.pool("o.parquet", ids=["row-000"] * 12), outputs_column="probs"),
     D, "")
case("project-select-outputs-nan",
     lambda f: _project_select(f, 2, outputs=f.pool("o.parquet", probs=nan_at(P),
                                                    ids=[f"row-{i:03d}" for i in range(12)]),
                               outputs_column="probs"), D, "")
case("project-select-head-missing", lambda f: _project_select(f, 2, head=f.path("none.npz")), F, "")
case("project-select-head-garbage", lambda f: _project_select(f, 2, head=f.text("h.npz", "garbage")), F, "")
case("project-select-max-memory-bogus", lambda f: _project_select(f, 2, max_memory="lots"), A, "")
case("project-label-unknown-id", lambda f: _project_label(f, [("nope", "a")]), D, "")
case("project-label-file-missing",
     lambda f: f.open().label(f.path("none.csv"), progress=None), F, "")
case("project-label-foreign-json", lambda f: f.open().label(f.text("l.json", "[1, 2"), progress=None), F, "")
case("project-label-empty-csv", lambda f: f.open().label(f.text("l.csv", ""), progress=None), F, "Empty CSV")
case("project-label-null-ids", lambda f: f.open().label(f.table("l.parquet", t(id=pa.array([None], pa.string()),
                                                                               label=["a"])), progress=None),
     D, "empty id at row 0")
case("project-label-policy-bogus", lambda f: f.open().label(f.labels_csv("l.csv", ["row-000"], ["a"]),
                                                            policy="bogus", progress=None), A, "policy")
case("project-label-duplicated-in-file",
     lambda f: _selected_then_label(f, lambda ids: ([ids[0], ids[0]], ["a", "b"])), None, check=ok_result)
case("project-requeue-round-missing", lambda f: _project_requeue(f, round_number=9), A, "")
case("project-requeue-unknown-ids", lambda f: _project_requeue(f, ids=["nope"]), D, "")
case("project-requeue-nothing", lambda f: _project_requeue(f), A, "")
case("project-export-bad-suffix", lambda f: _project_export(f, "x.txt"), A, "")
case("project-export-policy-bogus", lambda f: f.open().export(f.path("x.parquet"), policy="bogus"), A, "policy")

# --- distributed: argument checks before any cluster starts
def _dist():
    import fastal.distributed as d
    return d


case("dist-connect-both", lambda f: _dist().connect(scheduler="tcp://127.0.0.1:1", local_workers=2), A, "not")
case("dist-connect-bad-address", lambda f: _dist().connect(scheduler="not an address"), A, "scheduler must be")
case("dist-connect-workers-zero", lambda f: _dist().connect(local_workers=0), A, "")
case("dist-score-client-none", lambda f: _dist().score(P, "margin", client=None), A, "client")
case("dist-score-client-string", lambda f: fastal.score(P, "margin", client="tcp://x:1"), A, "client")
case("dist-top-k-client-object", lambda f: fastal.top_k(P, 1, "margin", client=object()), A, "client")
case("dist-select-client-object", lambda f: fastal.select(X, 1, "kcenter", client=object()), A, "client")
case("dist-select-strategy-unsupported", lambda f: _dist().select(X, 1, "typiclust", client=None), A, "")
case("dist-kcenter-client-none", lambda f: _dist().kcenter(X, 1, client=None), A, "client")
case("dist-pool-missing", lambda f: _dist().pool(f.path("none.parquet")), F, "does not exist")
case("dist-pool-array-column", lambda f: _dist().pool(P, column="probs"), A, "column/id_column")
case("dist-pool-partition-rows-zero", lambda f: _dist().pool(f.pool(), partition_rows=0), A, "partition_rows")
case("dist-pool-table", lambda f: _dist().pool(t(p=list_col(P))), A, "in-memory Arrow table")
case("dist-pool-scalar", lambda f: _dist().pool(3.0), D, "scalar")

# --- empty files and partitions among good ones: valid, rows numbered as if they were absent
def _dir_with_empty(f, name="d"):
    return f.directory(name, {"a.parquet": t(p=list_col(P[:0])), "b.parquet": t(p=list_col(P[:5])),
                              "c.arrow": t(p=list_col(P[:0])), "d.parquet": t(p=list_col(P[5:]))})


def _margin(p):
    s = np.sort(p, axis=1)
    return 1 - (s[:, -1] - s[:, -2])


case("dir-empty-files-score", lambda f: score(_dir_with_empty(f), "margin", chunk_rows=4), None,
     check=equals(_margin(P)))
case("dir-empty-files-top-k", lambda f: top_k(_dir_with_empty(f), 3, "margin", chunk_rows=2), None,
     check=indices_are(np.argsort(-_margin(P), kind="stable")[:3]))
case("dir-all-files-empty", lambda f: score(f.directory("d", {"a.parquet": t(p=list_col(P[:0]))}), "margin"), D,
     "empty")
case("parquet-empty-row-groups", lambda f: score(f.pool("g.parquet", write={"row_group_size": 1}), "margin",
                                                 chunk_rows=5), None, check=equals(_margin(P)))
case("dist-pool-empty-partition", lambda f: _dist().pool(_dir_with_empty(f)).n_rows, None,
     check=holds(lambda n: n == 12))
case("dist-pool-partition-rows-negative", lambda f: _dist().pool(f.pool(), partition_rows=-5), A, "partition_rows")

# --- more arguments of the verbs
case("kcenter-chunk-rows-zero", lambda f: kcenter(X, 2, chunk_rows=0), A, "chunk_rows")
case("kcenter-seed-string", lambda f: kcenter(X, 2, seed="x"), A, "seed")
case("kcenter-k-float", lambda f: kcenter(X, 2.5), A, "k")
case("select-chunk-rows-zero", lambda f: select(P, 2, "margin", chunk_rows=0), A, "chunk_rows")
case("select-column-int", lambda f: select(f.pool(), 2, "margin", column=3), A, "column must be a name")
case("top_k-id-column-int", lambda f: top_k(f.pool(), 2, "margin", id_column=3), A, "id_column must be")
case("score-column-list-of-ints", lambda f: score(f.pool(), "margin", column=[1, 2]), A, "column must be a name")

# --- the other commands
cli("plot-not-a-project", lambda f: ["plot", str(f.root)], F, "not a fastal project")
cli("push-not-a-project", lambda f: ["push", str(f.root), "--label-studio", "http://127.0.0.1:9", "--project", "1"],
    F, "not a fastal project")
cli("pull-not-a-project", lambda f: ["pull", str(f.root), "--label-studio", "http://127.0.0.1:9", "--project", "1"],
    F, "not a fastal project")
cli("export-not-a-project", lambda f: ["export", str(f.root)], F, "not a fastal project")
cli("requeue-not-a-project", lambda f: ["requeue", str(f.root), "--round", "1"], F, "not a fastal project")
cli("select-project-k-zero", lambda f: ["select", str(f.project()), "--k", "0"], A, "k")
cli("select-project-k-huge", lambda f: ["select", str(f.project()), "--k", "999"], A, "")
cli("select-project-outputs-missing", lambda f: ["select", str(f.project()), "--k", "2", "--outputs",
                                                 str(f.path("none.parquet"))], F, "")
cli("simulate-strategies-bogus", lambda f: ["simulate", str(_sim_file(f)), "--label-column", "y",
                                            "--embedding-column", "emb", "--strategies", "bogus", "--no-progress"], A, "bogus")
cli("simulate-one-class", lambda f: ["simulate", str(_sim_file(f, classes=1)), "--label-column", "y",
                                     "--embedding-column", "emb", "--no-progress"], D, "")
cli("simulate-no-features", lambda f: ["simulate", str(_sim_file(f)), "--label-column", "y", "--no-progress"], D,
    "no numeric column")
cli("demo-rows-zero", lambda f: ["demo", "--rows", "0", "--no-simulation", "--out-dir", str(f.path("demo"))], A,
    "--rows must be >= 1; got 0")
cli("demo-classes-one", lambda f: ["demo", "--rows", "5", "--classes", "1", "--no-simulation"], A, "--classes")
cli("demo-k-above-rows", lambda f: ["demo", "--rows", "5", "--k", "6", "--no-simulation"], A, "--k must be >= 1 and <= 5")
cli("demo-k-zero", lambda f: ["demo", "--rows", "50", "--k", "0", "--no-simulation", "--out-dir",
                              str(f.path("demo"))], A, "k")


def _sim_file(f, classes=2):
    y = np.arange(40) % classes
    feats = np.random.default_rng(2).standard_normal((40, 3)) + y[:, None]
    return f.table("sim.parquet", t(emb=list_col(feats), y=y))
case("bootstrap-seed-string", lambda f: models.bootstrap_committee(X, Y, 2, seed="x"), A, "seed")
case("loop-seed-string", lambda f: loop(seed="x"), A, "seed")

# --- project arguments and annotation files found by probing (each was a TypeError/KeyError/...)
case("project-export-columns-missing", lambda f: f.open().export(f.path("x.parquet"), columns=["nope"]), D,
     "--columns 'nope' not found")
case("project-export-columns-string", lambda f: f.open().export(f.path("x.parquet"), columns="emb"), A,
     "columns must be a list")
case("project-export-columns-no-labels", lambda f: f.open().export(f.path("x.parquet"), columns=["emb"]), None,
     check=holds(lambda out: out["rows"] == 0))
case("project-label-ls-json-object", lambda f: f.open().label(f.text("l.json", '{"a": 1}'), fmt="label-studio",
                                                              progress=None), D, "JSON list of tasks")
case("project-label-csv-binary-header", lambda f: f.open().label(f.bytes("l.csv", b"\xff\xfe\x00x\x00\n"),
                                                                 progress=None), F, "utf-8")
case("project-label-format-bogus", lambda f: f.open().label(f.labels_csv("l.csv", ["row-000"], ["a"]), fmt="xml",
                                                            progress=None), A, "--format must be one of")
case("project-select-options-not-dict", lambda f: _project_select(f, 2, options=3), A, "options must be a dict")
case("project-init-options-not-dict", lambda f: init(f, options=5), A, "options must be a dict")
case("project-select-seed-string", lambda f: _project_select(f, 2, seed="x"), A, "--seed must be a non-negative")
case("project-select-seed-negative", lambda f: _project_select(f, 2, seed=-2), A, "--seed must be a non-negative")
case("project-select-max-memory-negative", lambda f: _project_select(f, 2, max_memory=-1), A,
     "--max-memory must be positive")
case("project-open-lock-timeout-string",
     lambda f: open_project(f.project(), lock_timeout="x"), A, "--lock-timeout")
case("project-open-lock-timeout-negative",
     lambda f: open_project(f.project(), lock_timeout=-1), A, "--lock-timeout")
case("project-ledger-truncated", lambda f: open_project(_cut_ledger(f)), L,
     "truncated")
case("project-ledger-of-another-project", lambda f: open_project(_swap_ledger(f)),
     L, "another project")
case("project-pool-deleted-after-init", lambda f: _select_after(f, lambda pool: pool.unlink()), F,
     "does not exist any more")
case("project-pool-truncated-after-init",
     lambda f: _select_after(f, lambda pool: pool.write_bytes(pool.read_bytes()[:300])), F, "Parquet")
cli("export-columns-missing", lambda f: ["export", str(f.project()), "--columns", "nope"], D, "not found")
cli("label-format-bogus-file", lambda f: ["label", str(f.project()), str(f.text("l.json", "{}"))], D, "")


def _cut_ledger(f):
    d = f.project()
    path = _ledger_path(d)
    path.write_bytes(path.read_bytes()[:1000])
    return d


def _swap_ledger(f):
    import shutil
    a, b = f.project("a"), f.project("b")
    for suffix in ("", "-wal", "-shm"):
        (a / (_ledger_path(a).name + suffix)).unlink(missing_ok=True)
    shutil.copy(_ledger_path(b), _ledger_path(a))
    return a


def _select_after(f, change):
    d = f.project()
    change(f.path("proj-pool.parquet"))
    with open_project(d) as project:
        return project.select(2, progress=None)

# --- loop and simulate, found by probing; and valid extremes of the diversity strategies
case("loop-strategy-options-not-dict", lambda f: loop(strategy="kcenter", strategy_options=3), A,
     "strategy_options must be a dict")
case("simulate-y-nan", lambda f: sim(y=np.where(YS == 0, np.nan, 1.0)), D, "y must hold a label for every row; row")
case("simulate-y-test-none", lambda f: sim(y_test=np.array([None] + [1] * 19, dtype=object)), D,
     "y_test must hold a label for every row; row 0 is None")
case("loop-ids-duplicated", lambda f: loop(ids=np.zeros(60, int)).next_batch(), None,
     check=lambda batch: np.testing.assert_array_equal(batch.ids, np.zeros(4, int)))
case("kcenter-squared-distance-overflows-float32",
     lambda f: kcenter(np.array([[3e38, 3e38], [-3e38, -3e38], [0, 0], [1, 1]], np.float32), 3, seed=None),
     D, "float32's range")
# squared distances past float32 made the grouped kernels read out of bounds (a crash)
case("kcenter-weighted-squared-distance-overflows-float32",
     lambda f: kcenter(np.array([[3e20, 0], [-3e20, 0], [0, 0], [1, 1]], np.float32), 3,
                       weights=np.ones(4)),
     D, "reach 3e+20")
case("kcenter-cosine-huge-values-are-fine",
     lambda f: kcenter(np.array([[3e38, 3e38], [-3e38, 1e38], [1, 0], [0, 1]], np.float32), 3,
                       metric="cosine", seed=0),
     None, check=is_selection(3, 4))
# FAISS's k-means aborted the process (C++ terminate) on these; BADGE reported infinite scores
HUGE = np.array([[3e20, 0], [-3e20, 0], [0, 1], [1, 1], [2, 0], [0, 2]], np.float32)
case("select-kmeans-squared-distance-overflows-float32", lambda f: select(HUGE, 2, "kmeans"), D,
     "float32's range")
case("select-cluster-margin-squared-distance-overflows-float32",
     lambda f: select(HUGE, 2, "cluster_margin", probs=P[:6] / P[:6].sum(1, keepdims=True)), D,
     "float32's range")
case("select-typiclust-squared-distance-overflows-float32", lambda f: select(HUGE, 2, "typiclust"), D,
     "float32's range")
case("select-badge-squared-distance-overflows-float32",
     lambda f: select(HUGE, 2, "badge", probs=P[:6] / P[:6].sum(1, keepdims=True)), D, "float32's range")
case("knn-candidates-squared-distance-overflows-float32",
     lambda f: fastal.diversity.seals.KnnCandidates(HUGE, knn=2), D, "float32's range")
case("knn-candidates-cosine-huge-values-are-fine",
     lambda f: fastal.diversity.seals.KnnCandidates(HUGE, knn=2, metric="cosine")([0]), None,
     check=holds(lambda rows: rows.size == 2))
case("select-kcenter-logits-3e38-probs",
     lambda f: select(X, 3, "weighted_kcenter", probs=np.tile([[3e38, -3e38, 0]], (12, 1)), from_logits=True),
     None, check=is_selection(3, 12))
case("select-badge-logits-3e38-probs",
     lambda f: select(X, 3, "badge", probs=np.tile([[3e38, -3e38, 0]], (12, 1)), from_logits=True),
     None, check=is_selection(3, 12))
case("select-labeled-arrow-array", lambda f: select(P, 2, "margin", labeled=pa.array([9, 11])), None,
     check=is_selection(2, 12, exclude=[9, 11]))
case("select-labeled-set", lambda f: select(P, 2, "margin", labeled={0, 1}), D, "labeled")
case("select-labeled-uint64-huge", lambda f: select(P, 2, "margin", labeled=np.array([2**63], np.uint64)), D,
     "[0, 12)")
case("score-votes-huge-labels", lambda f: score(VOTES * 10**11, "vote_entropy"), None,
     check=equals(_vote_entropy(VOTES)))
case("score-committee-heads-3e37", lambda f: score(np.ones((3, 4)), "bald", model=Committee(
    [LinearHead(W * 1e37), LinearHead(-W * 1e37)])), None, check=equals(np.full(3, np.log(2))))
case("table-column-named-twice", lambda f: score(t(a=[0.5], b=[0.5]), "margin", column=["a", "a"]), A,
     "distinct columns")
case("table-large-list", lambda f: score(t(p=pa.array(P.tolist(), pa.large_list(pa.float64()))), "margin"), None,
     check=equals(_margin(P)))
case("ipc-list-float16", lambda f: score(f.table("h.arrow", t(p=pa.array([np.array([.25, .75], np.float16)],
                                                                           pa.list_(pa.float16())))), "margin"),
     None, check=equals([0.5]))
case("table-decimal-columns", lambda f: score(t(a=pa.array([1], pa.decimal128(5, 2)),
                                                b=pa.array([0], pa.decimal128(5, 2))), "margin", column=["a", "b"]),
     D, "numeric column")
case("table-dictionary-ids", lambda f: top_k(t(p=list_col(P), id=pa.array(["a"] * 12).dictionary_encode()), 1,
                                             "margin", id_column="id"), D, "integer or string")
case("table-nested-list", lambda f: score(t(p=pa.array([[[0.5, 0.5]]])), "margin"), D, "must hold floats")
case("table-empty-lists", lambda f: score(t(p=pa.array([[], []], pa.list_(pa.float64()))), "margin"), D,
     "at least 2 classes")
case("ipc-zero-batches", lambda f: score(_ipc_no_batches(f), "margin"), D, "empty")
case("table-uint64-logits", lambda f: score(t(p=pa.array([[2**64 - 1, 0]], pa.list_(pa.uint64()))), "margin",
                                            from_logits=True), None, check=equals([0.0]))
case("dist-pool-list-of-missing", lambda f: _dist().pool([str(f.path("a.parquet"))]), F, "cannot open")
case("dist-pool-truncated", lambda f: _dist().pool(f.truncated()), F, "Parquet")
case("dist-pool-foreign", lambda f: _dist().pool(f.text("a.csv", "x")), F, "neither")
case("dist-pool-dask-3d", lambda f: _dist().pool(_dask_ones((2, 3, 4, 5))), D, "2-D")
case("dist-kcenter-mode-bogus", lambda f: _dist().kcenter(X, 1, client=None, mode="bogus"), A, "mode")
case("dist-connect-workers-string", lambda f: _dist().connect(local_workers="x"), A, "local_workers")
case("dist-pool-column-int", lambda f: _dist().pool(f.pool(), column=5), A, "column must be a name")


def _ipc_no_batches(f):
    path = f.path("z.arrow")
    pa.ipc.new_file(str(path), pa.schema([("p", pa.list_(pa.float64()))])).close()
    return path
cli("requeue-ids-not-utf8", lambda f: ["requeue", str(f.project()), "--ids", str(f.bytes("ids.txt", b"\xff\xfe"))], F,
    "cannot read --ids")
cli("select-project-head-and-outputs", lambda f: ["select", str(f.project()), "--k", "2", "--head", "h.npz",
                                                  "--outputs", "o.parquet"], A, "not both")
cli("select-project-lock-timeout-negative", lambda f: ["select", str(f.project()), "--k", "2", "--lock-timeout", "-1"],
    A, "--lock-timeout")
cli("select-project-max-memory-zero", lambda f: ["select", str(f.project()), "--k", "2", "--dry-run",
                                                 "--max-memory", "0"], A, "--max-memory must be positive")
cli("select-project-option-not-a-number", lambda f: ["select", str(f.project()), "--k", "2", "--strategy",
                                                     "uncertain_kcenter", "--option", "beta=abc"], A, "beta")
cli("init-classes-mismatch", lambda f: ["init", str(f.path("p")), "--pool", str(f.emb_pool()), "--id-column", "id",
                                        "--probs-column", "probs", "--classes", "a,b"], A, "names 2 classes")
cli("init-option-malformed", lambda f: ["init", str(f.path("p")), "--pool", str(f.emb_pool()), "--id-column", "id",
                                        "--probs-column", "probs", "--option", "x"], A, "NAME=VALUE")
cli("label-int-ids-for-string-pool", lambda f: ["label", str(f.project()), str(f.text("l.csv", "id,label\n1,a\n"))],
    D, "not in the pool")
cli("push-token-unset", lambda f: ["push", str(f.project()), "--label-studio", "http://127.0.0.1:9", "--project", "1",
                                   "--token-env", "FASTAL_BAD_INPUTS_UNSET_TOKEN"], A,
    "set the environment variable FASTAL_BAD_INPUTS_UNSET_TOKEN")
cli("score-committee-members-mismatched", lambda f: ["score", str(f.table("c.parquet", t(m0=list_col(P),
                                                                                          m1=list_col(P[:, :2])))),
                                                     "--k", "2", "--method", "bald", "--column", "m0,m1"], D,
    "must all have")
cli("simulate-csv-not-utf8", lambda f: ["simulate", str(f.bytes("d.csv", b"\xff\xfe\x00\x01")), "--label-column", "y",
                                        "--no-progress"], F, "cannot read DATA")
cli("simulate-features-missing", lambda f: ["simulate", str(f.emb_pool()), "--label-column", "id", "--features",
                                            "nope", "--no-progress"], D, "--features nope not in DATA")


def _select_while_locked(f):
    from fastal.project import Project
    d = f.project()
    other = sqlite3.connect(_ledger_path(d), isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another fastal command in the middle of its transaction
    try:
        with Project(d, lock_timeout=0) as project:
            return project.select(2, progress=None)
    finally:
        other.execute("ROLLBACK")
        other.close()


case("project-ledger-locked", _select_while_locked, L, "locked by another fastal command")

# --- degenerate but valid: one-hot probabilities, a one-row pool (every strategy)
ONE_HOT = np.eye(3)[np.arange(12) % 3]


def _strategy_call(strategy, probs, embeddings, k, **kw):
    needs = set(fastal.STRATEGIES[strategy].needs)
    if needs == {"probs", "embeddings"}:
        return select(embeddings, k, strategy, probs=probs, **kw)
    return select(probs if needs == {"probs"} else embeddings, k, strategy, **kw)


for _name in fastal.STRATEGIES:
    case(f"select-{_name}-one-hot-probs", lambda f, s=_name: _strategy_call(s, ONE_HOT, X, 4), None,
         check=is_selection(4, 12))
    case(f"select-{_name}-one-row-pool",
         lambda f, s=_name: _strategy_call(s, np.array([[1.0, 0.0]]), np.ones((1, 2)), 1), None,
         check=indices_are([0]))
case("score-bald-one-hot-members", lambda f: score(np.stack([ONE_HOT, ONE_HOT]), "bald"), None,
     check=equals(np.zeros(12)))
case("score-kl-max-one-hot-disagreeing", lambda f: score(np.stack([ONE_HOT, np.roll(ONE_HOT, 1, 1)]), "kl_max"),
     None, check=equals(np.full(12, np.log(2)), rtol=1e-5))
case("score-vote-entropy-unanimous", lambda f: score(np.zeros((3, 5), int), "vote_entropy"), None,
     check=equals(np.zeros(5)))
case("score-egl-bias-one-hot", lambda f: score(ONE_HOT, "expected_gradient_length_bias"), None,
     check=equals(np.zeros(12)))
case("kcenter-labeled-embeddings-cover-pool", lambda f: kcenter(np.ones((12, 4)), 3, labeled=np.ones((2, 4))), None,
     check=is_selection(3, 12))
case("kcenter-some-weights-zero", lambda f: kcenter(X, 12, weights=np.r_[np.zeros(6), np.ones(6)]), None,
     check=is_selection(12, 12))
case("labels-saved-budget-string", lambda f: labels_saved([10, 20, 30], CURVES, ["x"]), A, "budgets must be")
case("labels-saved-budget-scalar", lambda f: labels_saved([10, 20, 30], CURVES, 20), A, "budgets must be")
case("labels-saved-curves-list", lambda f: labels_saved([10, 20, 30], [1, 2], [20]), A, "curves must be a dict")
case("labels-saved-curve-nan", lambda f: labels_saved([10, 20, 30], {**CURVES, "random": np.array([0.5, np.nan, 0.7])},
                                                      [20]), D, "must be finite")
case("labels-saved-counts-strings", lambda f: labels_saved(["a", "b"], CURVES, [20]), D, "label_counts")
case("labels-saved-exact", lambda f: labels_saved([10, 20, 30], CURVES, [20]), None,
     check=holds(lambda table: "| margin | 10 | +50.0 % |" in str(table)))
cli("warmup-method-bogus", lambda f: ["warmup", "--methods", "bogus"], A, "methods: expected names from")
cli("warmup-classes-one", lambda f: ["warmup", "--classes", "1"], A, "n_classes: expected an integer >= 2")
cli("warmup-dtype-bogus", lambda f: ["warmup", "--dtypes", "float16"], A, "dtypes: expected float32")


def _dask_ones(shape):
    import dask.array
    return dask.array.ones(shape)


def _push_unreachable(f):
    import os
    d = f.project()
    with open_project(d) as project:
        project.select(3, progress=None)
    os.environ["FASTAL_BAD_INPUTS_TOKEN"] = "not-a-real-token"  # unique name, nothing reads it
    return ["push", str(d), "--label-studio", "http://127.0.0.1:9", "--project", "1", "--timeout", "5",
            "--token-env", "FASTAL_BAD_INPUTS_TOKEN"]


def _label_studio_error():
    from fastal.project.labelstudio import LabelStudioError
    return LabelStudioError


# Label Studio's own kind (a FastalError): the server could not be reached (nothing listens on port 9)
cli("push-label-studio-unreachable", _push_unreachable, _label_studio_error(), "cannot reach Label Studio")


# --- corrupt files that crashed the process (bus error in Arrow) or leaked a UnicodeDecodeError /
# ArrowException: found by mutating bytes of small Parquet/IPC files (6,000 reads, none left)
def _ipc_bad_string_offsets(f):
    """An IPC file whose id column has an offset far past its data (Arrow reads it unchecked)."""
    offsets = np.array([0, 2, 2**30, 6] + [6] * 9, dtype=np.int32)
    ids = pa.Array.from_buffers(pa.string(), 12, [None, pa.py_buffer(offsets.tobytes()),
                                                  pa.py_buffer(b"r0r1r2")])
    return f.table("offsets.arrow", pa.Table.from_arrays([list_col(P), ids], names=["probs", "id"]))


def _parquet_ids_not_utf8(f):
    offsets = np.arange(13, dtype=np.int32) * 2
    ids = pa.Array.from_buffers(pa.string(), 12, [None, pa.py_buffer(offsets.tobytes()),
                                                  pa.py_buffer(b"\xff\xfe" * 12)])
    return f.table("ids.parquet", pa.Table.from_arrays([list_col(P), ids], names=["probs", "id"]),
                   compression="none")


def _column_name_not_utf8(f, name):
    path = f.table(name, t(probs=list_col(P)), **({} if name.endswith(".arrows") else {"store_schema": False}))
    path.write_bytes(path.read_bytes().replace(b"probs", b"\xffrobs"))
    return path


case("ipc-string-offsets-out-of-bounds", lambda f: top_k(_ipc_bad_string_offsets(f), 2, "margin", id_column="id"),
     F, "out of bounds")
case("parquet-ids-not-utf8", lambda f: top_k(_parquet_ids_not_utf8(f), 2, "margin", id_column="id"), F,
     "cannot be read")
case("ipc-stream-column-name-not-utf8", lambda f: score(_column_name_not_utf8(f, "n.arrows"), "margin"), F,
     "not UTF-8")
case("parquet-column-name-not-utf8", lambda f: score(_column_name_not_utf8(f, "n.parquet"), "margin"), F,
     "not UTF-8")


def _ledger_text_not_utf8(f):
    d = f.project()
    con = sqlite3.connect(_ledger_path(d))
    con.execute("UPDATE meta SET value = CAST(x'fffe' AS TEXT) WHERE key = 'pool'")
    con.commit()
    con.close()
    return open_project(d, readonly=True).status()


# a ledger whose text is not UTF-8 (flipped ledger bytes also made SQLite echo such text: see test_fuzz)
case("project-ledger-text-not-utf8", _ledger_text_not_utf8, L, "cannot be used")
