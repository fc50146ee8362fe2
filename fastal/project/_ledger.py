"""The label ledger: one SQLite file (WAL, ``synchronous=FULL``), one transaction per action.

Nothing else in fastal writes project state. A ledger is refused, never repaired, when it is
not a SQLite file, is truncated or corrupt, was written by another program or a newer
fastal, or belongs to another project directory.

Tables
------
meta        key -> value: the project's configuration and a write counter (``version``)
rounds      one row per selected batch: strategy, options, seed, k, the pool's fingerprint,
            the model outputs used, a hash of every input, the pool's score histogram
selections  (round, id): rank, score, prediction, status pending/labeled/requeued/skipped
items       id -> state: the one row that says whether an id may be selected again
imports     one row per ``fastal label`` / ``fastal pull``: source, counts
labels      every annotation ever received (never updated, never deleted)
conflicts   a label that disagrees with an earlier label of the same id
pushes      which pending ids were sent to which Label Studio project as which task
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
from datetime import datetime, timezone
from pathlib import Path

from .._errors import LedgerError
from . import _faults

#: PRAGMA application_id of a fastal ledger ("fAL1"): tells our files from other SQLite files.
APPLICATION_ID = 0x66414C31
#: PRAGMA user_version: the schema version this fastal reads and writes.
SCHEMA_VERSION = 1
LEDGER_NAME = "ledger.sqlite"
_SQLITE_MAGIC = b"SQLite format 3\x00"

STATUSES = ("pending", "labeled", "requeued", "skipped")

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE rounds (
    round INTEGER PRIMARY KEY,
    strategy TEXT NOT NULL,
    options TEXT NOT NULL,
    seed INTEGER NOT NULL,
    k INTEGER NOT NULL,
    pool_fingerprint TEXT NOT NULL,
    n_pool INTEGER NOT NULL,
    outputs TEXT,
    outputs_fingerprint TEXT,
    inputs_hash TEXT NOT NULL,
    basis_version INTEGER NOT NULL,
    pool_scores TEXT,
    seconds REAL,
    created TEXT NOT NULL
);
CREATE TABLE selections (
    round INTEGER NOT NULL REFERENCES rounds(round),
    id NOT NULL,
    rank INTEGER NOT NULL,
    position INTEGER NOT NULL,
    score REAL,
    uncertainty REAL,
    predicted TEXT,
    confidence REAL,
    data TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'labeled', 'requeued', 'skipped')),
    updated TEXT NOT NULL,
    PRIMARY KEY (round, id)
);
CREATE INDEX selections_by_id ON selections(id);
CREATE TABLE items (
    id PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('pending', 'labeled', 'requeued', 'skipped')),
    round INTEGER,
    updated TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE imports (
    import INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    sha256 TEXT,
    rows INTEGER NOT NULL,
    added INTEGER NOT NULL,
    duplicates INTEGER NOT NULL,
    conflicts INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    time TEXT NOT NULL
);
CREATE TABLE labels (
    label_id INTEGER PRIMARY KEY,
    id NOT NULL,
    label TEXT NOT NULL,
    round INTEGER,
    source TEXT NOT NULL,
    annotator TEXT,
    time TEXT NOT NULL,
    import INTEGER NOT NULL REFERENCES imports(import),
    key TEXT NOT NULL UNIQUE
);
CREATE INDEX labels_by_id ON labels(id);
CREATE TABLE conflicts (
    conflict INTEGER PRIMARY KEY,
    id NOT NULL,
    label_id INTEGER NOT NULL REFERENCES labels(label_id),
    label TEXT NOT NULL,
    previous TEXT NOT NULL,
    import INTEGER NOT NULL REFERENCES imports(import),
    time TEXT NOT NULL
);
CREATE TABLE pushes (
    target TEXT NOT NULL,
    round INTEGER NOT NULL,
    id NOT NULL,
    task INTEGER,
    time TEXT NOT NULL,
    PRIMARY KEY (target, round, id)
);
"""


def now() -> str:
    """UTC time as ISO 8601 with microseconds (sorts as text)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")


def create(directory: Path, meta: dict) -> None:
    """Write a new ledger holding ``meta``, all or nothing (temporary file, fsync, rename)."""
    path = directory / LEDGER_NAME
    tmp = directory / f".{LEDGER_NAME}.tmp-{os.getpid()}"
    for leftover in (tmp, Path(f"{tmp}-journal")):
        if leftover.exists():
            leftover.unlink()
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        _configure(conn)
        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        conn.execute("BEGIN")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)",
                         [(k, str(v)) for k, v in {**meta, "version": 0}.items()])
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    _faults.point("init:before_rename")
    os.replace(tmp, path)
    _fsync_dir(directory)


def _check_header(path: Path) -> None:
    """Refuse what is not a whole SQLite file before SQLite itself touches it."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(100)
    except OSError as exc:
        raise LedgerError(f"cannot read the ledger {path}: {exc}") from exc
    if size == 0:
        raise LedgerError(f"the ledger {path} is empty (0 bytes): truncated or overwritten; "
                          f"restore it from a backup (fastal does not repair ledgers)")
    if not head.startswith(_SQLITE_MAGIC):
        raise LedgerError(f"{path} is not a fastal ledger: not a SQLite database "
                          f"(first bytes {head[:16]!r})")
    if len(head) < 100:
        raise LedgerError(f"the ledger {path} is truncated: {size} bytes, shorter than a "
                          f"SQLite header; restore it from a backup")
    page_size = struct.unpack(">H", head[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    pages, counter, valid_for = (struct.unpack(">I", head[o:o + 4])[0] for o in (28, 24, 92))
    if pages and counter == valid_for and size < pages * page_size:
        raise LedgerError(f"the ledger {path} is truncated: its header says {pages} pages of "
                          f"{page_size} bytes ({pages * page_size} bytes) but the file has "
                          f"{size} bytes; restore it from a backup")


class Ledger:
    """An open ledger. ``write()`` is the only way to change it (one transaction)."""

    def __init__(self, path: Path, *, lock_timeout: float = 30.0, readonly: bool = False):
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        if not self.path.exists():
            raise LedgerError(f"no ledger at {self.path}: run `fastal init` first")
        _check_header(self.path)
        try:
            # Check the file read-only first, so that a foreign file is never modified.
            probe = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                    timeout=lock_timeout)
            try:
                app = probe.execute("PRAGMA application_id").fetchone()[0]
                if app != APPLICATION_ID:
                    raise LedgerError(
                        f"{self.path} is a SQLite database but not a fastal ledger "
                        f"(application_id {app:#x}, expected {APPLICATION_ID:#x})")
                version = probe.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise LedgerError(f"the ledger {self.path} has schema version {version}, "
                                      f"newer than this fastal reads ({SCHEMA_VERSION}): "
                                      f"upgrade fastal")
                problems = [r[0] for r in probe.execute("PRAGMA quick_check(5)")]
                if problems != ["ok"]:
                    raise LedgerError(f"the ledger {self.path} is corrupt (SQLite quick_check: "
                                      f"{'; '.join(problems)}); restore it from a backup")
            finally:
                probe.close()
            uri = f"file:{self.path}?mode=ro" if readonly else f"file:{self.path}"
            self.conn = sqlite3.connect(uri, uri=True, timeout=lock_timeout,
                                        isolation_level=None)
            _configure(self.conn)
            if not readonly:
                mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode.lower() != "wal":
                    raise LedgerError(f"cannot put the ledger {self.path} in WAL mode (got {mode})")
        except sqlite3.OperationalError as exc:
            raise _locked_or(exc, self.path, lock_timeout) from exc
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            # UnicodeDecodeError: a corrupt page's bytes echoed back as text (quick_check)
            raise LedgerError(f"the ledger {self.path} is corrupt or not a SQLite database: "
                              f"{exc}; restore it from a backup") from exc

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- reading -----------------------------------------------------------------------
    def query(self, sql: str, params=()) -> list:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise _locked_or(exc, self.path, self.lock_timeout) from exc
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            raise LedgerError(f"the ledger {self.path} is corrupt: {exc}") from exc

    def meta(self) -> dict:
        return dict(self.query("SELECT key, value FROM meta"))

    def version(self) -> int:
        return int(self.query("SELECT value FROM meta WHERE key='version'")[0][0])

    @contextlib.contextmanager
    def snapshot(self):
        """A read transaction: every query inside sees one consistent state."""
        self.query("BEGIN")
        try:
            yield self
        finally:
            self.conn.execute("COMMIT")

    # -- writing -----------------------------------------------------------------------
    @contextlib.contextmanager
    def write(self, action: str):
        """One user action = one transaction: ``BEGIN IMMEDIATE`` ... ``COMMIT``.

        ``BEGIN IMMEDIATE`` takes the write lock before anything is read, so two commands
        never interleave: the second waits up to ``lock_timeout`` seconds, then fails with a
        message saying the ledger is locked. Any exception rolls everything back.
        """
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise _locked_or(exc, self.path, self.lock_timeout) from exc
        try:
            yield self.conn
            self.conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 "
                              "WHERE key = 'version'")
            _faults.point(f"{action}:before_commit")
            self.conn.execute("COMMIT")
        except BaseException as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                raise _locked_or(exc, self.path, self.lock_timeout) from exc
            if isinstance(exc, sqlite3.DatabaseError):
                raise LedgerError(f"the ledger {self.path} could not be written: {exc}") from exc
            raise
        _faults.point(f"{action}:after_commit")


def _locked_or(exc: sqlite3.OperationalError, path: Path, timeout: float) -> LedgerError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return LedgerError(f"the ledger {path} is locked by another fastal command (waited "
                           f"{timeout:g} s); try again when it has finished, or raise "
                           f"--lock-timeout")
    return LedgerError(f"the ledger {path} cannot be used: {text}")
