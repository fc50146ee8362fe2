"""A project directory: the pool's description, the ledger, and one folder per round.

::

    DIR/fastal-project.json     marks the directory; holds the project's id
    DIR/ledger.sqlite           the ledger (plus SQLite's -wal and -shm files)
    DIR/rounds/round-0001/      batch.parquet, batch.csv, tasks.json of round 1

Every method that changes state is one ledger transaction; everything else (batch files,
exports, plots) is derived from the ledger and written all or nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import uuid
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._errors import ArgumentError, DataError, FastalError, FileError, LedgerError
from . import _faults, _files, _labels, _ledger, _pool, _select

MARKER = "fastal-project.json"
POLICIES = ("latest", "first", "vote")
_EXCLUDED_STATES = ("pending", "labeled", "skipped")


class FastalWarning(UserWarning):
    """Something the user should know but that does not stop the command (e.g. a stale model)."""


def _warn(message: str) -> None:
    warnings.warn(message, FastalWarning, stacklevel=3)


def is_project(path) -> bool:
    """True when ``path`` is a directory holding a fastal project (or an unfinished init)."""
    path = Path(path)
    return path.is_dir() and ((path / MARKER).exists() or (path / _ledger.LEDGER_NAME).exists())


def _no_progress(total, desc):
    import contextlib

    class _Bar:
        def update(self, n):
            pass
    return contextlib.nullcontext(_Bar())


def tqdm_progress(total, desc):
    """A progress bar on stderr in rows/s, shown only when the step lasts over a second."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="rows", unit_scale=True, file=sys.stderr,
                leave=False, delay=1.0, mininterval=0.5)


def _round_seed(seed: int, round_number: int) -> int:
    """The seed of one round: the project's seed mixed with the round number."""
    return int(np.random.SeedSequence([int(seed), int(round_number)]).generate_state(1)[0])


def _json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _parse_size(value) -> int | None:
    """'8G', '500MiB', '1.5GB', '1000000' -> bytes (powers of 1024 for K/M/G/T)."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not value > 0:
            raise ArgumentError(f"--max-memory must be positive; got {value!r}")
        return int(value)
    text = str(value).strip().upper().replace("IB", "").replace("B", "")
    scale = 1
    for suffix, factor in (("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("T", 1 << 40)):
        if text.endswith(suffix):
            text, scale = text[:-1], factor
            break
    try:
        number = float(text)
    except ValueError:
        raise ArgumentError(f"--max-memory must be a size such as 8G, 500M or 2000000000; "
                            f"got {value!r}") from None
    if number <= 0:
        raise ArgumentError(f"--max-memory must be positive; got {value!r}")
    return int(number * scale)


def _format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def current_rss() -> int:
    """Resident memory of this process (bytes), from /proc (0 where there is none)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def load_head(path):
    """A :class:`fastal.models.LinearHead` from an ``.npz`` with ``W`` (d, C), optional ``b``
    (C,) and ``classes`` (C,) (``np.savez(path, W=head.W, b=head.b)``)."""
    from ..models import LinearHead

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise FileError(f"cannot read the linear head {path} (an .npz with W and b): {exc}") from exc
    if "W" not in arrays:
        raise DataError(f"the linear head {path} must hold an array 'W' of shape (d, C) (and "
                        f"optionally 'b' (C,), 'classes' (C,)); it holds {', '.join(arrays) or 'nothing'}")
    classes = arrays.get("classes")
    return LinearHead(arrays["W"], arrays.get("b"),
                      classes=None if classes is None else classes.astype(str))


@dataclass
class RoundResult:
    """What ``select`` did: the round, its batch, where its files are, how long it took."""

    round: int
    ids: list
    scores: list
    strategy: str
    files: list
    rerun: bool = False
    phases: dict = field(default_factory=dict)
    estimate: dict | None = None
    dry_run: bool = False


@dataclass
class ImportResult:
    """What ``label``/``pull`` did to the ledger."""

    source: str
    rows: int
    annotations: int
    added: int
    duplicates: int
    conflicts: list
    skipped: int
    unlabeled: int
    already_imported: bool = False
    foreign: int = 0


class Project:
    """An open project directory. ``Project(DIR)`` checks the ledger before anything else.

    Parameters
    ----------
    directory : str or path
    lock_timeout : float, default 30
        Seconds a write waits for another fastal command holding the ledger.
    readonly : bool, default False
        Open the ledger read-only (``status``, ``export``, ``plot``).
    """

    def __init__(self, directory, *, lock_timeout: float = 30.0, readonly: bool = False):
        if isinstance(lock_timeout, bool) or not isinstance(lock_timeout, (int, float)) \
                or not lock_timeout >= 0:
            raise ArgumentError(f"--lock-timeout must be a number of seconds >= 0; "
                                f"got {lock_timeout!r}")
        self.dir = Path(directory)
        if not self.dir.is_dir():
            raise FileError(f"project directory does not exist: {self.dir} (create it with "
                            f"`fastal init {self.dir} --pool ...`)")
        marker = self.dir / MARKER
        ledger_path = self.dir / _ledger.LEDGER_NAME
        if not marker.exists():
            if ledger_path.exists():
                raise LedgerError(f"{self.dir} has a ledger but no {MARKER}: not a fastal "
                                  f"project directory (was the ledger copied here?)")
            raise FileError(f"{self.dir} is not a fastal project (no {MARKER}); create one "
                            f"with `fastal init {self.dir} --pool ...`")
        try:
            self.project_id = json.loads(marker.read_text())["project_id"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LedgerError(f"{marker} is not a fastal project marker: {exc}") from exc
        if not ledger_path.exists():
            raise LedgerError(f"{self.dir} has no ledger: `fastal init` did not finish; run it "
                              f"again with the same arguments")
        self.ledger = _ledger.Ledger(ledger_path, lock_timeout=lock_timeout, readonly=readonly)
        try:
            meta = self.ledger.meta()
        except FastalError:
            self.ledger.close()
            raise
        if meta.get("project_id") != self.project_id:
            self.ledger.close()
            raise LedgerError(
                f"the ledger {ledger_path} belongs to another project (its id "
                f"{meta.get('project_id')!r}, this directory's {self.project_id!r}): it was "
                f"copied from another project directory; fastal will not use it")
        self.config = _config(meta)

    def close(self):
        self.ledger.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- init --------------------------------------------------------------------------
    @classmethod
    def init(cls, directory, pool, id_column, *, embedding_column=None, probs_column=None,
             logits_column=None, strategy=None, options=None, seed=0, classes=None,
             data_columns=(), ls_from_name="label", ls_to_name=None, policy="latest",
             progress=None):
        """Create a project for ``pool`` in ``directory`` (new or empty).

        Parameters
        ----------
        directory : str or path
            Created if missing; must be empty otherwise.
        pool : str or path
            A Parquet / Arrow IPC file or a directory of them (read as :mod:`fastal.io` does).
        id_column : str
            Integer or string column of unique, non-null ids: the rows' identity.
        embedding_column : str, optional
            ``list<float>`` embeddings (diversity and hybrid strategies, ``head=``).
        probs_column, logits_column : str, optional
            The model's outputs stored in the pool (rounds may pass ``outputs=`` instead).
        strategy : str, optional
            Default strategy of the rounds (``fastal.strategies()``; default margin).
        options : dict, optional
            Its options, e.g. ``{"beta": 20}``.
        seed : int, default 0
            Round r uses ``SeedSequence([seed, r])``.
        classes : list of str, optional
            Class names in output-column order; labels outside them are refused.
        data_columns : sequence of str
            Pool columns copied into batch files and Label Studio tasks.
        ls_from_name, ls_to_name : str
            Label Studio control and object names of the predictions in ``tasks.json``.
        policy : {"latest", "first", "vote"}
            Which label training gets when annotations disagree.

        Returns
        -------
        Project

        Raises
        ------
        DataError
            Missing id column, null or duplicated ids, a missing or mistyped column.
        ArgumentError
            A non-empty directory or an existing project, an unknown strategy or option.
        FileError
            A missing or unreadable pool.

        Notes
        -----
        The marker is written, then the ledger (one file, renamed into place), so an
        interrupted init leaves no half project and can simply be run again.
        """
        from ..select import DEFAULT_STRATEGY, STRATEGIES

        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise FileError(f"project directory {directory} exists and is not a directory")
        if (directory / _ledger.LEDGER_NAME).exists():
            raise ArgumentError(f"{directory} is already a fastal project; use another directory")
        if directory.exists():
            others = [p.name for p in directory.iterdir() if p.name != MARKER
                      and not p.name.startswith(f".{_ledger.LEDGER_NAME}.tmp")]
            if others:
                raise ArgumentError(f"project directory {directory} must be new or empty; it "
                                    f"holds {', '.join(sorted(others)[:5])}")
        if probs_column and logits_column:
            raise ArgumentError("pass --probs-column or --logits-column, not both")
        pool_path = Path(pool).resolve()
        ids = _pool.read_ids(pool_path, id_column, "pool", progress)
        _pool.check_ids(ids, id_column, "pool")
        kind = "int" if pa.types.is_integer(ids.type) else "str"
        sch = _pool.schema(pool_path)
        width = n_classes = 0
        if embedding_column:
            from ..io import as_source
            width = as_source(pool_path, column=embedding_column, what="pool").width
        values_column = probs_column or logits_column
        if values_column:
            from ..io import as_source
            n_classes = as_source(pool_path, column=values_column, what="pool").width
            if n_classes < 2:
                raise DataError(f"column {values_column!r} must hold at least 2 classes per "
                                f"row; got {n_classes}")
        if classes is not None:
            classes = [str(c) for c in classes]
            if len(set(classes)) != len(classes) or not classes:
                raise ArgumentError(f"--classes must be distinct names; got {classes}")
            if n_classes and len(classes) != n_classes:
                raise ArgumentError(f"--classes names {len(classes)} classes but column "
                                    f"{values_column!r} has {n_classes} per row")
        for c in data_columns:
            if c not in sch.names:
                raise DataError(f"--data-column {c!r} not found in the pool; columns are: "
                                f"{', '.join(sch.names)}")
        strategy = strategy or DEFAULT_STRATEGY
        _check_strategy(strategy, options or {}, STRATEGIES)
        if "embeddings" in STRATEGIES[strategy].needs and not embedding_column:
            raise ArgumentError(f"strategy {strategy!r} reads embeddings: pass "
                                f"--embedding-column")
        if policy not in POLICIES:
            raise ArgumentError(f"--policy must be one of {', '.join(POLICIES)}; got {policy!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ArgumentError(f"--seed must be a non-negative integer; got {seed!r}")
        project_id = uuid.uuid4().hex
        meta = {
            "project_id": project_id, "created": _ledger.now(), "fastal_version": _version(),
            "pool": str(pool_path), "id_column": id_column, "id_type": kind,
            "embedding_column": embedding_column or "", "embedding_width": width,
            "probs_column": values_column or "", "logits": int(bool(logits_column)),
            "n_classes": n_classes, "strategy": strategy, "options": _json(options or {}),
            "seed": int(seed), "classes": _json(classes) if classes else "",
            "data_columns": _json(list(data_columns)), "ls_from_name": ls_from_name,
            "ls_to_name": ls_to_name or (data_columns[0] if data_columns else "text"),
            "policy": policy, "n_pool": len(ids), "pool_fingerprint": _pool.fingerprint(ids),
        }
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FileError(f"cannot create the project directory {directory}: "
                            f"{exc.strerror or exc}") from exc
        _files.write_json(directory / MARKER, {"fastal_project": 1, "project_id": project_id,
                                               "ledger": _ledger.LEDGER_NAME})
        _faults.point("init:after_marker")
        _ledger.create(directory, meta)
        return cls(directory)

    # -- reading the ledger ------------------------------------------------------------
    def _excluded_ids(self) -> list:
        return [r[0] for r in self.ledger.query(
            "SELECT id FROM items WHERE state IN ('pending', 'labeled', 'skipped')")]

    def _last_round(self):
        rows = self.ledger.query("SELECT round, inputs_hash, basis_version, strategy FROM rounds "
                                 "ORDER BY round DESC LIMIT 1")
        return rows[0] if rows else None

    def round_rows(self, round_number: int) -> list:
        """The batch of one round as dicts, best first (what the batch files hold)."""
        strategy = self.ledger.query("SELECT strategy FROM rounds WHERE round=?",
                                     (round_number,))[0][0]
        rows = []
        for id_, rank, score, unc, predicted, conf, data in self.ledger.query(
                "SELECT id, rank, score, uncertainty, predicted, confidence, data FROM "
                "selections WHERE round=? ORDER BY rank", (round_number,)):
            rows.append({"id": id_, "rank": rank, "score": score, "uncertainty": unc,
                         "predicted": predicted, "confidence": conf, "strategy": strategy,
                         "data": json.loads(data) if data else {}})
        return rows

    def ensure_round_files(self) -> list:
        """Write the batch files of every round that lacks them (after a crash); returns
        the rounds rewritten."""
        done = []
        for (r,) in self.ledger.query("SELECT round FROM rounds ORDER BY round"):
            folder = _files.round_dir(self.dir, r)
            for leftover in folder.glob(".*.tmp-*") if folder.exists() else ():
                leftover.unlink(missing_ok=True)
            if all((folder / name).exists() for name in _files.BATCH_FILES):
                continue
            self._write_round_files(r)
            done.append(r)
        return done

    def _write_round_files(self, round_number: int) -> list:
        cfg = self.config
        return _files.write_round_files(self.dir, self.round_rows(round_number),
                                        cfg["data_columns"], round_number,
                                        from_name=cfg["ls_from_name"], to_name=cfg["ls_to_name"])

    # -- select ------------------------------------------------------------------------
    def resolve(self, k, *, strategy=None, options=None, outputs=None, outputs_column=None,
                outputs_id_column=None, from_logits=None, head=None, seed=None,
                chunk_rows=None, round_number=None) -> _select.Inputs:
        """Check a round's arguments against the project and the files (reads no values)."""
        from ..io import as_source
        from ..select import STRATEGIES

        cfg = self.config
        strategy = strategy or cfg["strategy"]
        if options is None:
            options = cfg["options"] if strategy == cfg["strategy"] else {}
        _check_strategy(strategy, options, STRATEGIES)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ArgumentError(f"--k must be a positive integer; got {k!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise ArgumentError(f"--seed must be a non-negative integer; got {seed!r}")
        if outputs is not None and head is not None:
            raise ArgumentError("pass --outputs or --head, not both")
        needs = STRATEGIES[strategy].needs
        inputs = _select.Inputs(pool=cfg["pool"], id_column=cfg["id_column"], strategy=strategy,
                                options=dict(options), k=int(k), seed=0,
                                n_pool=cfg["n_pool"], needs=needs,
                                embedding_column=cfg["embedding_column"] or None,
                                chunk_rows=chunk_rows, classes=cfg["classes"])
        if not Path(cfg["pool"]).exists():
            raise FileError(f"the project's pool {cfg['pool']} does not exist any more (moved "
                            f"or deleted?)")
        if inputs.embedding_column:
            inputs.width = as_source(cfg["pool"], column=inputs.embedding_column,
                                     what="pool").width
        if head is not None:
            inputs.head_path = str(head)
            inputs.head = load_head(head)
            if not inputs.embedding_column:
                raise ArgumentError("--head scores the pool's embeddings: init the project "
                                    "with --embedding-column")
            if inputs.head.n_features != inputs.width:
                raise DataError(f"--head {head} expects {inputs.head.n_features} features but "
                                f"the embedding column {inputs.embedding_column!r} has "
                                f"{inputs.width}")
            inputs.probs_from, inputs.n_classes, inputs.from_logits = "head", \
                inputs.head.n_classes, True
        elif outputs is not None:
            outputs = Path(outputs)
            sch = _pool.schema(outputs, "outputs")
            inputs.outputs = str(outputs)
            inputs.outputs_id_column = outputs_id_column or cfg["id_column"]
            if inputs.outputs_id_column not in sch.names:
                raise DataError(f"outputs {outputs} have no id column "
                                f"{inputs.outputs_id_column!r} (pass --outputs-id-column); "
                                f"columns are: {', '.join(sch.names)}")
            column = outputs_column
            if column is None:
                lists = [f.name for f in sch if f.name != inputs.outputs_id_column and (
                    pa.types.is_list(f.type) or pa.types.is_fixed_size_list(f.type)
                    or pa.types.is_large_list(f.type))]
                if cfg["probs_column"] in sch.names:
                    column = cfg["probs_column"]
                elif len(lists) == 1:
                    column = lists[0]
                else:
                    raise DataError(f"cannot tell which column of outputs {outputs} holds the "
                                    f"model's probabilities or logits: pass --outputs-column "
                                    f"(columns: {', '.join(sch.names)})")
            inputs.probs_column = column
            source = as_source(outputs, column=column, what="outputs")
            inputs.n_classes = source.width
            inputs.probs_from = "outputs"
            inputs.from_logits = bool(cfg["logits"]) if from_logits is None else bool(from_logits)
        elif cfg["probs_column"]:
            inputs.probs_from, inputs.probs_column = "pool", cfg["probs_column"]
            inputs.n_classes = cfg["n_classes"]
            inputs.from_logits = bool(cfg["logits"]) if from_logits is None else bool(from_logits)
        if "probs" in needs and inputs.probs_from is None:
            raise ArgumentError(
                f"strategy {strategy!r} needs the model's outputs: pass --outputs FILE "
                f"(probabilities or logits keyed by id) or --head HEAD.npz, or init the "
                f"project with --probs-column / --logits-column")
        if "embeddings" in needs and not inputs.embedding_column:
            raise ArgumentError(f"strategy {strategy!r} reads embeddings but the project has "
                                f"no --embedding-column")
        if inputs.n_classes and inputs.classes and inputs.n_classes != len(inputs.classes):
            raise DataError(f"the model outputs have {inputs.n_classes} classes but the "
                            f"project has {len(inputs.classes)} ({', '.join(inputs.classes)})")
        return inputs

    def _inputs_hash(self, inputs: _select.Inputs, seed: int, fingerprint: str,
                     basis_version: int) -> str:
        h = {"strategy": inputs.strategy, "options": inputs.options, "k": inputs.k,
             "seed": seed, "pool": fingerprint, "basis": basis_version,
             "outputs": _pool.stat_fingerprint(inputs.outputs, "outputs") if inputs.outputs else None,
             "outputs_column": inputs.probs_column, "from_logits": inputs.from_logits,
             "head": _sha256(inputs.head_path) if inputs.head_path else None}
        return hashlib.sha256(_json(h).encode()).hexdigest()

    def select(self, k, *, strategy=None, options=None, outputs=None, outputs_column=None,
               outputs_id_column=None, from_logits=None, head=None, seed=None, chunk_rows=None,
               dry_run=False, max_memory=None, progress=None, new_round=False) -> RoundResult:
        """Pick the next round's batch, record it in one transaction, write its files.

        Parameters
        ----------
        k : int
            Batch size, at most the ids that are neither labeled, pending nor skipped.
        strategy : str, optional
            Default: the project's. ``options`` are its options (default: the project's).
        outputs : str or path, optional
            This round's model outputs: the id column and one list column of probabilities
            (or logits with ``from_logits``), joined to the pool by id. ``outputs_column``
            and ``outputs_id_column`` name the columns when they differ from the pool's.
        head : str or path, optional
            A ``LinearHead`` saved as ``.npz`` (W, b), scoring the pool's embeddings.
        seed : int, optional
            Default: mixed from the project's seed and the round number.
        chunk_rows : int, optional
            Rows per streamed chunk; the batch does not depend on it.
        dry_run : bool
            Return the memory and time estimate only (``RoundResult.estimate``).
        max_memory : int or str, optional
            Refuse to run when the estimate exceeds it ("8G", "500M", bytes).
        progress : callable, optional
            ``progress(total, desc)`` -> context manager with ``update(n)`` (CLI: tqdm).
        new_round : bool
            Select another batch even if the last round had the same inputs.

        Returns
        -------
        RoundResult
            The round number, its ids and scores in pick order, the batch files, per-phase
            seconds; ``rerun=True`` when the last round was returned (same inputs, nothing
            changed since: e.g. the command was run again after a crash).

        Raises
        ------
        ArgumentError
            k too large, unknown strategy or option, a strategy whose inputs are missing,
            an estimate over ``max_memory``.
        DataError
            Outputs that miss pool ids, carry unknown or repeated ids, or have the wrong
            number of classes; invalid probabilities (with the row).
        LedgerError
            A locked ledger, or ids of this batch taken by another command meanwhile.
        """
        import time

        progress = progress or _no_progress
        t_start = time.perf_counter()
        phases = {}
        max_bytes = _parse_size(max_memory)
        inputs = self.resolve(k, strategy=strategy, options=options, outputs=outputs,
                              outputs_column=outputs_column, outputs_id_column=outputs_id_column,
                              from_logits=from_logits, head=head, seed=seed,
                              chunk_rows=chunk_rows)
        if dry_run or max_bytes is not None:
            est = self.estimate(inputs)
            if max_bytes is not None and est["bytes"] > max_bytes:
                raise ArgumentError(
                    f"this select needs about {_format_bytes(est['bytes'])}, more than "
                    f"--max-memory {_format_bytes(max_bytes)}; use a streamed strategy "
                    f"({', '.join(_select.STREAMED)}) or a machine with more memory")
            if dry_run:
                return RoundResult(0, [], [], inputs.strategy, [], estimate=est, dry_run=True)
        if not dry_run:
            self.ensure_round_files()
        t0 = time.perf_counter()
        pool_ids = _pool.read_ids(inputs.pool, inputs.id_column, "pool", progress)
        fingerprint = _pool.fingerprint(pool_ids)
        if fingerprint != self.config["pool_fingerprint"]:
            _pool.check_ids(pool_ids, inputs.id_column, "pool")
            _warn(f"the pool {inputs.pool} changed since `fastal init` ({len(pool_ids):,} rows "
                  f"now, {self.config['n_pool']:,} then): rows are matched by id")
        inputs.n_pool = len(pool_ids)
        phases["read ids"] = time.perf_counter() - t0
        with self.ledger.snapshot():
            version = self.ledger.version()
            last = self._last_round()
            excluded_ids = self._excluded_ids()
            last_labels = self.ledger.query(
                "SELECT max(time) FROM imports WHERE added > 0")[0][0]
        # The same command again (e.g. after a crash) returns the round it made.
        if last is not None and last[2] + 1 == version and not new_round:
            last_seed = int(seed) if seed is not None else _round_seed(self.config["seed"], last[0])
            if self._inputs_hash(inputs, last_seed, fingerprint, last[2]) == last[1]:
                self.ensure_round_files()
                rows = self.round_rows(last[0])
                return RoundResult(last[0], [r["id"] for r in rows], [r["score"] for r in rows],
                                   last[3], self._round_paths(last[0]), rerun=True)
        round_number = 1 if last is None else last[0] + 1
        inputs.seed = int(seed) if seed is not None else _round_seed(self.config["seed"],
                                                                      round_number)
        inputs_hash = self._inputs_hash(inputs, inputs.seed, fingerprint, version)
        t0 = time.perf_counter()
        kind = self.config["id_type"]
        excluded = np.zeros(len(pool_ids), dtype=bool)
        if excluded_ids:
            found = pc.is_in(pool_ids, value_set=_pool.as_arrow_ids(excluded_ids, kind))
            excluded = found.to_numpy(zero_copy_only=False)
            missing = len(excluded_ids) - int(excluded.sum())
            if missing:
                _warn(f"{missing} labeled or pending id(s) of the ledger are not in the pool "
                      f"any more")
        n_eligible = len(pool_ids) - int(excluded.sum())
        if inputs.k > n_eligible:
            raise ArgumentError(
                f"--k {inputs.k} is larger than the unlabeled pool: {n_eligible:,} of "
                f"{len(pool_ids):,} ids are neither labeled, pending nor skipped")
        positions = None
        if inputs.probs_from == "outputs":
            positions = _select.join_positions(inputs, pool_ids)
            if last_labels is not None:
                newest = _pool.newest_mtime(inputs.outputs, "outputs")
                from datetime import datetime
                if newest < datetime.fromisoformat(last_labels).timestamp():
                    _warn(f"the outputs {inputs.outputs} are older than the last labels "
                          f"(imported {last_labels}): was the model retrained on them?")
        phases["join"] = time.perf_counter() - t0
        batch = _select.run(inputs, excluded, positions, progress)
        phases.update(batch.phases)
        t0 = time.perf_counter()
        picks = batch.positions
        order = np.argsort(picks, kind="stable")
        pick_ids = pool_ids.take(pa.array(picks)).to_pylist()
        data = [{} for _ in picks]
        if self.config["data_columns"]:
            table = _pool.gather_rows(inputs.pool, self.config["data_columns"], picks[order])
            columns = {c: table.column(c).to_pylist() for c in table.column_names}
            for j, i in enumerate(order):
                data[i] = {c: columns[c][j] for c in columns}
        classes = self.config["classes"]
        phases["read data columns"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        stamp = _ledger.now()
        rows = []
        for rank in range(picks.size):
            top = int(batch.predicted[rank])
            predicted = None if top < 0 else (classes[top] if classes else str(top))
            rows.append((round_number, pick_ids[rank], rank, int(picks[rank]),
                         _real(batch.scores[rank]), _real(batch.uncertainty[rank]), predicted,
                         _real(batch.confidence[rank]),
                         _json(data[rank]) if data[rank] else None, "pending", stamp))
        with self.ledger.write("select") as conn:
            now_version = int(conn.execute("SELECT value FROM meta WHERE key='version'")
                              .fetchone()[0])
            if now_version != version:
                # Another command wrote meanwhile (labels arriving, say). The batch was picked
                # from a consistent snapshot (recorded as its basis) and stands, unless one of
                # its ids was selected, labeled or skipped in the meantime.
                conn.execute("CREATE TEMP TABLE IF NOT EXISTS picked (id PRIMARY KEY)")
                conn.execute("DELETE FROM picked")
                conn.executemany("INSERT INTO picked VALUES (?)", [(r[1],) for r in rows])
                taken = [r[0] for r in conn.execute(
                    "SELECT id FROM items WHERE state IN ('pending', 'labeled', 'skipped') "
                    "AND id IN (SELECT id FROM picked) LIMIT 5")]
                conn.execute("DELETE FROM picked")
                if taken:
                    raise LedgerError(
                        f"while this select ran, another fastal command selected or labeled "
                        f"ids it picked (e.g. {', '.join(repr(t) for t in taken)}); nothing "
                        f"was recorded: run select again")
            conn.execute(
                "INSERT INTO rounds(round, strategy, options, seed, k, pool_fingerprint, n_pool, "
                "outputs, outputs_fingerprint, inputs_hash, basis_version, pool_scores, seconds, "
                "created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (round_number, inputs.strategy, _json(inputs.options), inputs.seed, inputs.k,
                 fingerprint, len(pool_ids), inputs.outputs or inputs.head_path,
                 _pool.stat_fingerprint(inputs.outputs, "outputs") if inputs.outputs else None,
                 inputs_hash, version, _json(batch.histogram) if batch.histogram else None,
                 time.perf_counter() - t_start, stamp))
            _faults.point("select:after_round")
            conn.executemany("INSERT INTO selections(round, id, rank, position, score, "
                             "uncertainty, predicted, confidence, data, status, updated) "
                             "VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
            _faults.point("select:after_selections")
            conn.executemany(
                "INSERT INTO items(id, state, round, updated) VALUES (?, 'pending', ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET state='pending', round=excluded.round, "
                "updated=excluded.updated", [(r[1], round_number, stamp) for r in rows])
        phases["ledger write"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        paths = self._write_round_files(round_number)
        _faults.point("select:after_files")
        phases["batch files"] = time.perf_counter() - t0
        return RoundResult(round_number, pick_ids, [r[4] for r in rows], inputs.strategy,
                           [str(p) for p in paths], phases=phases)

    def _round_paths(self, r):
        return [str(_files.round_dir(self.dir, r) / n) for n in _files.BATCH_FILES]

    def estimate(self, inputs: _select.Inputs) -> dict:
        """Memory and time a select with these inputs needs (see ``fastal select --dry-run``)."""
        n_excluded = self.ledger.query(
            "SELECT count(*) FROM items WHERE state IN ('pending', 'labeled', 'skipped')")[0][0]
        if inputs.strategy in ("kcenter", "weighted_kcenter", "uncertain_kcenter", "badge",
                               "cluster_margin", "kmeans", "typiclust"):
            import faiss  # noqa: F401  (part of the baseline of these strategies)
        id_bytes = _id_bytes(inputs.pool, inputs.id_column, inputs.n_pool)
        columns = [c for c in (inputs.probs_column if inputs.probs_from == "pool" else None,
                               inputs.embedding_column) if c]
        return _select.estimate(inputs, n_excluded, id_bytes, current_rss(),
                                joined=inputs.probs_from == "outputs",
                                row_group_bytes=_row_group_bytes(inputs.pool, columns))

    # -- labels ------------------------------------------------------------------------
    def label(self, path, *, fmt=None, id_column=None, label_column="label",
              annotator_column=None, policy=None, progress=None) -> ImportResult:
        """Import an annotation file in one transaction.

        Parameters
        ----------
        path : str or path
            CSV/TSV, Parquet or JSON Lines with id and label columns (and optionally an
            annotator column), or a Label Studio JSON export (``fmt`` forces a format).
        id_column, label_column, annotator_column : str, optional
            Column names (default: the pool's id column, ``label``, ``annotator``).
        policy : {"latest", "first", "vote"}, optional
            Also set the project's label policy.

        Returns
        -------
        ImportResult
            New labels, duplicates (already in the ledger: importing twice is a no-op),
            conflicts (a different label for an already labeled id: kept, never
            overwritten), skipped (Label Studio's cancelled annotations), rows without
            a label.

        Raises
        ------
        DataError
            Ids that are not in the pool, labels outside the project's classes, missing
            columns: nothing is imported.
        """
        path = Path(path)
        self.ensure_round_files()       # a select killed after its commit left them unwritten
        if policy is not None and policy not in POLICIES:
            raise ArgumentError(f"--policy must be one of {', '.join(POLICIES)}; got {policy!r}")
        annotations = _labels.read_annotations(
            path, fmt=fmt, id_column=id_column or self.config["id_column"],
            label_column=label_column, annotator_column=annotator_column,
            id_kind=self.config["id_type"])
        return self.import_annotations(annotations, f"file {path.resolve()}",
                                       sha256=_labels.file_sha256(path), policy=policy,
                                       progress=progress)

    def _check_known(self, ids: list, progress=None) -> None:
        """Every id must be in the pool (ids already in the ledger are)."""
        if not ids:
            return
        known = {r[0] for r in self.ledger.query("SELECT id FROM items")}
        unknown = sorted({i for i in ids if i not in known}, key=str)
        if not unknown:
            return
        pool_ids = _pool.read_ids(self.config["pool"], self.config["id_column"], "pool",
                                  progress)
        arr = _pool.as_arrow_ids(unknown, self.config["id_type"])
        # Hash the few unknown ids and scan the pool, not the other way round: a hash table
        # of a 10M-id pool would cost a gigabyte.
        in_pool = pool_ids.filter(pc.is_in(pool_ids, value_set=arr))
        missing = pc.filter(arr, pc.invert(pc.is_in(arr, value_set=in_pool))).to_pylist()
        if missing:
            raise DataError(f"{len(missing)} annotated id(s) are not in the pool (e.g. "
                            f"{', '.join(repr(m) for m in missing[:5])}); nothing was imported")

    def import_annotations(self, ann: _labels.Annotations, source: str, *, sha256=None,
                           policy=None, progress=None) -> ImportResult:
        """Record annotations in one transaction (idempotent; conflicts recorded)."""
        classes = self.config["classes"]
        if classes:
            bad = sorted({lab for lab, skip in zip(ann.labels, ann.skips)
                          if not skip and lab not in classes})
            if bad:
                raise DataError(f"{len(bad)} label(s) are not among the project's classes "
                                f"({', '.join(classes)}): {', '.join(repr(b) for b in bad[:5])}; "
                                f"nothing was imported")
        self._check_known(ann.ids, progress)
        already = sha256 is not None and bool(self.ledger.query(
            "SELECT 1 FROM imports WHERE sha256=? LIMIT 1", (sha256,)))
        stamp = _ledger.now()
        rows, seen = [], set()
        for seq, (i, lab, who, t, key, skip) in enumerate(zip(
                ann.ids, ann.labels, ann.annotators, ann.times, ann.keys, ann.skips)):
            if key in seen:     # the same annotation twice in one file: once is enough
                continue
            seen.add(key)
            rows.append((seq, i, lab, who, t, key, int(skip)))
        with self.ledger.write("label") as conn:
            import_id = conn.execute(
                "INSERT INTO imports(source, sha256, rows, added, duplicates, conflicts, "
                "skipped, time) VALUES (?, ?, ?, 0, 0, 0, 0, ?)",
                (source, sha256, ann.rows, stamp)).lastrowid
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS incoming (seq INTEGER PRIMARY KEY, "
                         "id, label, annotator, time, key TEXT, skip INTEGER)")
            conn.execute("DELETE FROM incoming")
            conn.executemany("INSERT INTO incoming VALUES (?,?,?,?,?,?,?)", rows)
            _faults.point("label:after_incoming")
            before = conn.execute("SELECT coalesce(max(label_id), 0) FROM labels").fetchone()[0]
            added = conn.execute(
                "INSERT INTO labels(id, label, round, source, annotator, time, import, key) "
                "SELECT i.id, i.label, (SELECT round FROM items WHERE items.id = i.id), ?, "
                "i.annotator, coalesce(i.time, ?), ?, i.key FROM incoming i "
                "WHERE i.skip = 0 AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.key = i.key) ORDER BY i.seq",
                (source, stamp, import_id)).rowcount
            _faults.point("label:after_labels")
            n_conflicts = conn.execute(
                "INSERT INTO conflicts(id, label_id, label, previous, import, time) "
                "SELECT n.id, n.label_id, n.label, (SELECT json_group_array(DISTINCT p.label) "
                "FROM labels p WHERE p.id = n.id AND p.label_id < n.label_id AND p.label != n.label), "
                "?, ? FROM labels n WHERE n.label_id > ? AND EXISTS (SELECT 1 FROM labels p "
                "WHERE p.id = n.id AND p.label_id < n.label_id AND p.label != n.label) "
                "ORDER BY n.label_id", (import_id, stamp, before)).rowcount
            conn.execute("UPDATE selections SET status='labeled', updated=? WHERE status IN "
                         "('pending', 'skipped') AND id IN (SELECT id FROM labels WHERE "
                         "label_id > ?)", (stamp, before))
            conn.execute("INSERT INTO items(id, state, round, updated) SELECT id, 'labeled', "
                         "NULL, ? FROM labels WHERE label_id > ? GROUP BY id "
                         "ON CONFLICT(id) DO UPDATE SET state='labeled', updated=excluded.updated",
                         (stamp, before))
            skipped = conn.execute(
                "UPDATE selections SET status='skipped', updated=? WHERE status='pending' AND "
                "id IN (SELECT id FROM incoming WHERE skip=1)", (stamp,)).rowcount
            conn.execute("UPDATE items SET state='skipped', updated=? WHERE state='pending' AND "
                         "id IN (SELECT id FROM incoming WHERE skip=1)", (stamp,))
            _faults.point("label:after_status")
            n_labels = sum(1 for skip in ann.skips if not skip)
            conn.execute("UPDATE imports SET added=?, duplicates=?, conflicts=?, skipped=? "
                         "WHERE import=?", (added, n_labels - added, n_conflicts, skipped,
                                            import_id))
            conflicts = [
                {"id": i, "label": lab, "previous": json.loads(prev)}
                for i, lab, prev in conn.execute(
                    "SELECT id, label, previous FROM conflicts WHERE import=? ORDER BY conflict",
                    (import_id,))]
            if policy is not None:
                conn.execute("UPDATE meta SET value=? WHERE key='policy'", (policy,))
            conn.execute("DELETE FROM incoming")
        if policy is not None:
            self.config["policy"] = policy
        return ImportResult(source, ann.rows, len(ann.ids), added, n_labels - added, conflicts,
                            skipped, ann.unlabeled, already, ann.foreign)

    # -- requeue -----------------------------------------------------------------------
    def requeue(self, *, round_number=None, ids=None) -> dict:
        """Make ids selectable again: a round's pending and skipped ids, or listed ids
        (also labeled ones, e.g. to have a conflict labeled again)."""
        if (round_number is None) == (ids is None):
            raise ArgumentError("pass --round R or --ids FILE (one of them)")
        stamp = _ledger.now()
        with self.ledger.write("requeue") as conn:
            if round_number is not None:
                if not conn.execute("SELECT 1 FROM rounds WHERE round=?",
                                    (round_number,)).fetchone():
                    rounds = [r[0] for r in conn.execute("SELECT round FROM rounds")]
                    raise ArgumentError(f"--round {round_number} does not exist; rounds are "
                                        f"{_ranges(rounds) or 'none yet'}")
                n = conn.execute("UPDATE selections SET status='requeued', updated=? WHERE "
                                 "round=? AND status IN ('pending', 'skipped')",
                                 (stamp, round_number)).rowcount
                conn.execute("UPDATE items SET state='requeued', updated=? WHERE round=? AND "
                             "state IN ('pending', 'skipped')", (stamp, round_number))
                return {"requeued": n, "not_requeued": 0}
            ids = list(dict.fromkeys(ids))
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS requeue_ids (id PRIMARY KEY)")
            conn.execute("DELETE FROM requeue_ids")
            conn.executemany("INSERT INTO requeue_ids VALUES (?)", [(i,) for i in ids])
            unknown = [r[0] for r in conn.execute(
                "SELECT id FROM requeue_ids WHERE id NOT IN (SELECT id FROM items)")]
            if unknown:
                raise DataError(f"{len(unknown)} id(s) of --ids were never selected or labeled "
                                f"(e.g. {', '.join(repr(u) for u in unknown[:5])}); nothing "
                                f"was requeued")
            conn.execute("UPDATE selections SET status='requeued', updated=? WHERE status IN "
                         "('pending', 'skipped') AND id IN (SELECT id FROM requeue_ids)", (stamp,))
            n = conn.execute("UPDATE items SET state='requeued', updated=? WHERE state IN "
                             "('pending', 'skipped', 'labeled') AND id IN "
                             "(SELECT id FROM requeue_ids)", (stamp,)).rowcount
            conn.execute("DELETE FROM requeue_ids")
            return {"requeued": n, "not_requeued": len(ids) - n}

    # -- training labels, status, export, plot -----------------------------------------
    def training_labels(self, policy=None) -> tuple[dict, dict]:
        """``({id: label}, {id: [labels]})``: the label training gets under ``policy``, and
        the ids left out (a vote tie) with their labels."""
        policy = policy or self.config["policy"]
        if policy not in POLICIES:
            raise ArgumentError(f"--policy must be one of {', '.join(POLICIES)}; got {policy!r}")
        by_id: dict = {}
        for id_, label in self.ledger.query("SELECT id, label FROM labels ORDER BY label_id"):
            by_id.setdefault(id_, []).append(label)
        chosen, ties = {}, {}
        for id_, labels in by_id.items():
            if policy == "latest":
                chosen[id_] = labels[-1]
            elif policy == "first":
                chosen[id_] = labels[0]
            else:
                counts = Counter(labels).most_common()
                if len(counts) > 1 and counts[0][1] == counts[1][1]:
                    ties[id_] = labels
                else:
                    chosen[id_] = counts[0][0]
        return chosen, ties

    def status(self) -> dict:
        """Counts, per-round progress, classes, conflicts and stopping signals."""
        cfg = self.config
        q = self.ledger.query
        with self.ledger.snapshot():
            states = dict(q("SELECT state, count(*) FROM items GROUP BY state"))
            rounds = q("SELECT round, strategy, k, created, outputs, pool_scores FROM rounds "
                       "ORDER BY round")
            per_round = {}
            for r, status, n in q("SELECT round, status, count(*) FROM selections "
                                  "GROUP BY round, status"):
                per_round.setdefault(r, {})[status] = n
            n_annotations = q("SELECT count(*) FROM labels")[0][0]
            n_conflicts = q("SELECT count(*) FROM conflicts")[0][0]
            conflict_ids = [r[0] for r in q("SELECT DISTINCT id FROM conflicts ORDER BY conflict")]
            picks = q("SELECT s.round, s.id, s.predicted, s.uncertainty FROM selections s "
                      "ORDER BY s.round, s.rank")
            imports = q("SELECT count(*), max(time) FROM imports")[0]
            chosen, ties = self.training_labels()
        agreement, uncertainty = {}, {}
        for r, id_, predicted, unc in picks:
            if unc is not None:
                uncertainty.setdefault(r, []).append(unc)
            if predicted is not None and id_ in chosen:
                agreement.setdefault(r, []).append(predicted == chosen[id_])
        round_list = []
        for r, strategy, k, created, outputs, pool_scores in rounds:
            counts = per_round.get(r, {})
            entry = {"round": r, "strategy": strategy, "k": k, "created": created,
                     "outputs": outputs, **{s: counts.get(s, 0) for s in _ledger.STATUSES}}
            if r in uncertainty:
                entry["mean_uncertainty"] = float(np.mean(uncertainty[r]))
            if r in agreement:
                entry["model_agreement"] = float(np.mean(agreement[r]))
            round_list.append(entry)
        per_class = dict(sorted(Counter(chosen.values()).items(),
                                key=lambda kv: (-kv[1], kv[0])))
        return {
            "project": str(self.dir), "pool": cfg["pool"], "n_pool": cfg["n_pool"],
            "strategy": cfg["strategy"], "policy": cfg["policy"],
            "labeled": states.get("labeled", 0), "pending": states.get("pending", 0),
            "skipped": states.get("skipped", 0), "requeued": states.get("requeued", 0),
            "unlabeled": cfg["n_pool"] - sum(states.get(s, 0) for s in _EXCLUDED_STATES),
            "annotations": n_annotations, "imports": imports[0], "last_import": imports[1],
            "rounds": round_list, "per_class": per_class,
            "conflicts": {"count": n_conflicts, "ids": len(conflict_ids),
                          "examples": conflict_ids[:5]},
            "vote_ties": len(ties) if cfg["policy"] == "vote" else 0,
            "stopping_signals": _stopping_signals(round_list),
        }

    def export(self, out, *, policy=None, columns=(), include_ties=False) -> dict:
        """The labeled set (one row per id, the label chosen by ``policy``) as Parquet/CSV."""
        if not str(out).lower().endswith((".parquet", ".pq", ".csv")):
            raise ArgumentError(f"--out must end in .parquet or .csv; got {str(out)!r}")
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
            raise ArgumentError(f"columns must be a list of pool column names; got {columns!r}")
        if columns:
            names = _pool.schema(self.config["pool"], "pool").names
            missing = [c for c in columns if c not in names]
            if missing:
                raise DataError(f"--columns {missing[0]!r} not found in the pool; columns are: "
                                f"{', '.join(names)}")
        chosen, ties = self.training_labels(policy)
        info = {}
        for id_, n, rnd, annotators in self.ledger.query(
                "SELECT id, count(*), max(round), group_concat(DISTINCT annotator) FROM labels "
                "GROUP BY id"):
            info[id_] = (n, rnd, annotators)
        conflicted = {r[0] for r in self.ledger.query("SELECT DISTINCT id FROM conflicts")}
        ids = list(chosen)
        labels = [chosen[i] for i in ids]
        if include_ties:
            ids += list(ties)
            labels += [None] * len(ties)
        kind = self.config["id_type"]
        table = pa.table({
            "id": _pool.as_arrow_ids(ids, kind).cast(pa.int64() if kind == "int" else pa.string()),
            "label": _label_array(labels),
            "annotations": pa.array([info[i][0] for i in ids], type=pa.int64()),
            "conflict": pa.array([i in conflicted for i in ids]),
            "round": pa.array([info[i][1] for i in ids], type=pa.int64()),
        })
        if columns:
            pool_ids = _pool.read_ids(self.config["pool"], self.config["id_column"], "pool")
            pos = pc.index_in(_pool.as_arrow_ids(ids, kind), value_set=pool_ids)
            if pos.null_count:
                raise DataError(f"{pos.null_count} labeled id(s) are not in the pool any more; "
                                f"export without --columns")
            pos = pos.to_numpy(zero_copy_only=False).astype(np.int64)
            order = np.argsort(pos, kind="stable")
            gathered = _pool.gather_rows(self.config["pool"], list(columns), pos[order])
            inverse = np.empty_like(order)
            inverse[order] = np.arange(order.size)
            gathered = gathered.take(pa.array(inverse))
            for c in columns:
                table = table.append_column(c, gathered.column(c))
        out = Path(out)
        _files.write_table(out, table)
        return {"rows": table.num_rows, "ties_left_out": 0 if include_ties else len(ties),
                "path": str(out), "policy": policy or self.config["policy"]}

    def plot(self, out) -> str:
        """A PNG: labels per round, class balance over rounds, each batch's scores vs the pool."""
        from ._plot import plot_project

        return plot_project(self, out)


def _label_array(labels):
    """Labels as int64 when every one is a plain integer literal, else strings."""
    def is_int(s):
        try:
            return s is not None and str(int(s)) == s
        except ValueError:
            return False
    if labels and all(is_int(s) for s in labels):
        return pa.array([int(s) for s in labels], type=pa.int64())
    return pa.array(labels, type=pa.string())


def _stopping_signals(rounds: list) -> list:
    """Signals that more labels may not pay off, where the ledger can compute them."""
    signals = []
    unc = [(r["round"], r["mean_uncertainty"]) for r in rounds if "mean_uncertainty" in r]
    if len(unc) >= 2:
        first, last = unc[0][1], unc[-1][1]
        change = (last - first) / first if first else 0.0
        signals.append({"signal": "batch uncertainty", "value": last,
                        "text": f"mean uncertainty of the selected batch went from {first:.3f} "
                                f"(round {unc[0][0]}) to {last:.3f} (round {unc[-1][0]}), "
                                f"{change:+.0%}; a flat or falling curve means the model finds "
                                f"fewer rows it is unsure about"})
    agree = [(r["round"], r["model_agreement"]) for r in rounds if "model_agreement" in r]
    if agree:
        r, a = agree[-1]
        signals.append({"signal": "model agreement", "value": a,
                        "text": f"the model's guess matched the annotators on {a:.0%} of round "
                                f"{r}'s labeled batch (its hardest rows); when this stops "
                                f"rising from round to round, the model has stopped learning "
                                f"from new labels"})
    return signals


def _ranges(values) -> str:
    values = sorted(values)
    if not values:
        return ""
    return f"{values[0]}..{values[-1]}" if len(values) > 1 else str(values[0])


def _real(x):
    x = float(x)
    return None if math.isnan(x) else x


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def _version() -> str:
    from .. import __version__
    return __version__


def _check_strategy(name, options, strategies) -> None:
    if not isinstance(options, dict):
        raise ArgumentError(f"options must be a dict of strategy options (name: value); "
                            f"got {options!r}")
    if name not in strategies:
        raise ArgumentError(f"--strategy must be one of {', '.join(strategies)}; got {name!r}")
    unknown = sorted(set(options) - set(strategies[name].options))
    if unknown:
        accepted = ", ".join(strategies[name].options) or "no options"
        raise ArgumentError(f"strategy {name!r} does not take option(s) {', '.join(unknown)}; "
                            f"it accepts {accepted}")


def _config(meta: dict) -> dict:
    """The ledger's meta table as typed values."""
    try:
        return {
            **meta,
            "n_pool": int(meta["n_pool"]), "seed": int(meta["seed"]),
            "logits": bool(int(meta["logits"])), "n_classes": int(meta["n_classes"]),
            "embedding_width": int(meta["embedding_width"]),
            "options": json.loads(meta["options"]),
            "classes": json.loads(meta["classes"]) if meta["classes"] else None,
            "data_columns": json.loads(meta["data_columns"]),
        }
    except (KeyError, ValueError) as exc:
        raise LedgerError(f"the ledger's project settings are incomplete or unreadable "
                          f"({exc}); it was not written by this version of fastal") from exc


def _row_group_bytes(pool, columns) -> int:
    """The largest decoded column chunk of ``columns`` in the pool's Parquet row groups
    (the reader holds one while it slices it into chunks); 0 for Arrow IPC."""
    import pyarrow.parquet as pq

    largest = 0
    try:
        for f in _pool.data_files(pool):
            if not _pool._is_parquet(f):
                continue
            md = pq.ParquetFile(f).metadata
            names = [md.schema.column(i).path.split(".")[0] for i in range(md.num_columns)]
            for g in range(md.num_row_groups):
                group = md.row_group(g)
                for i, name in enumerate(names):
                    if name in columns:
                        largest = max(largest, group.column(i).total_uncompressed_size)
    except (OSError, ValueError, IndexError):
        return 0
    return int(largest)


def _id_bytes(pool, id_column, n_pool) -> int:
    """Bytes of the id column in memory (Parquet metadata when there is some)."""
    import pyarrow.parquet as pq

    total = 0
    try:
        for f in _pool.data_files(pool):
            if _pool._is_parquet(f):
                md = pq.ParquetFile(f).metadata
                index = md.schema.to_arrow_schema().get_field_index(id_column)
                for g in range(md.num_row_groups):
                    total += md.row_group(g).column(index).total_uncompressed_size
            else:
                total += 16 * n_pool // max(1, len(_pool.data_files(pool)))
    except (OSError, ValueError, IndexError):
        total = 16 * n_pool
    return int(total) + 8 * n_pool
