"""SIGKILL fault injection for ``fastal select DIR`` and ``fastal label`` (run by
tests/test_cli_project.py in its own process: ``python kill_driver.py WORKDIR KILLS SEED``).

A reference project runs a script of rounds (select, label, select, label, ...) without
interruption. A second project runs the same script, but every command is first started
in a forked child and killed with SIGKILL: after a random number of milliseconds, or at a
named point between the steps of a transaction (``FASTAL_FAULT_POINT``). After every kill
the ledger must open, pass ``PRAGMA integrity_check``, still hold everything a command had
acknowledged (exit code 0), and show no half round; then the same command is run again
(the next command) until it succeeds. At the end the two ledgers and batch files must be
the same. The children are forked from this warmed-up process (Numba's workqueue layer,
which is fork-safe, and FAISS on one OpenMP thread), so 50 kills cost seconds, not minutes of interpreter start-ups.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

os.environ["NUMBA_THREADING_LAYER"] = "workqueue"  # fork-safe, unlike GNU OpenMP
os.environ["OMP_NUM_THREADS"] = "1"   # FAISS's OpenMP: no thread pool to break at fork

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from project_helpers import make_pool, write_labels  # noqa: E402

from fastal.cli import main  # noqa: E402
from fastal.project import Project  # noqa: E402

HOOKS = {
    "select": ["select:after_round", "select:after_selections", "select:before_commit",
               "select:after_commit", "file:batch.csv:before_rename", "select:after_files"],
    "label": ["label:after_incoming", "label:after_labels", "label:after_status",
              "label:before_commit", "label:after_commit"],
}


def run_child(argv, log: Path, fault=None):
    """Fork; the child runs the command. Returns the child's pid."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            if fault:
                os.environ["FASTAL_FAULT_POINT"] = fault
            import faulthandler
            faulthandler.dump_traceback_later(60, exit=True)   # a hang fails, with its stack
            rc = main(argv)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(rc)
        except BaseException:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(99)
    return pid


def snapshot(project_dir: Path) -> dict:
    """What the ledger holds, for comparisons (no volatile times or counters)."""
    conn = sqlite3.connect(project_dir / "ledger.sqlite")
    try:
        return {
            "rounds": conn.execute("SELECT round, strategy, k, seed FROM rounds ORDER BY round").fetchall(),
            "selections": conn.execute("SELECT round, id, rank, status FROM selections "
                                       "ORDER BY round, rank").fetchall(),
            "labels": conn.execute("SELECT label_id, id, label, annotator, round FROM labels "
                                   "ORDER BY label_id").fetchall(),
            "items": conn.execute("SELECT id, state, round FROM items ORDER BY id").fetchall(),
            "conflicts": conn.execute("SELECT id, label, previous FROM conflicts "
                                      "ORDER BY conflict").fetchall(),
        }
    finally:
        conn.close()


def check(project_dir: Path, acknowledged: dict) -> None:
    """The ledger opens, is intact and consistent, and lost nothing acknowledged."""
    with Project(project_dir, readonly=True) as project:
        q = project.ledger.query
        assert q("PRAGMA integrity_check") == [("ok",)], q("PRAGMA integrity_check")
        for r, k in q("SELECT round, k FROM rounds"):
            n = q("SELECT count(*) FROM selections WHERE round=?", (r,))[0][0]
            assert n == k, f"half round {r}: {n} of {k} selections"
        orphans = q("SELECT count(*) FROM selections WHERE status='pending' AND id NOT IN "
                    "(SELECT id FROM items WHERE state='pending')")[0][0]
        assert orphans == 0, f"{orphans} pending selections without a pending item"
        unlabeled = q("SELECT count(*) FROM items WHERE state='labeled' AND id NOT IN "
                      "(SELECT id FROM labels)")[0][0]
        assert unlabeled == 0, f"{unlabeled} items labeled without a label"
        for r, ids in acknowledged["rounds"].items():
            got = [row[0] for row in q("SELECT id FROM selections WHERE round=? ORDER BY rank", (r,))]
            assert got == ids, f"acknowledged round {r} lost or changed"
        keys = {(i, lab, who) for i, lab, who in q("SELECT id, label, annotator FROM labels")}
        missing = acknowledged["labels"] - keys
        assert not missing, f"{len(missing)} acknowledged labels lost, e.g. {sorted(missing)[:3]}"


def script(workdir: Path, reference: Path, ids: list) -> list:
    """The commands of four rounds; label files are made from the reference batches."""
    steps = []
    rng = np.random.default_rng(0)
    for r in range(1, 5):
        select = ["select", str(reference), "--k", "40", "--quiet"]
        if r == 2:
            select += ["--strategy", "uncertain_kcenter"]
        assert main(select) == 0
        with Project(reference) as project:
            batch = [row["id"] for row in project.round_rows(r)]
        n = 30
        labels = [str(x) for x in rng.choice(["a", "b", "c"], n)]
        path = write_labels(workdir / f"labels{r}.csv", batch[:n], labels, ["ann"] * n)
        steps.append(("select", select[2:]))
        steps.append(("label", [str(path), "--quiet"]))
        assert main(["label", str(reference), str(path), "--quiet"]) == 0
    # A second annotator who disagrees with some round-1 labels: conflicts.
    with Project(reference) as project:
        batch1 = [row["id"] for row in project.round_rows(1)][:10]
    path = write_labels(workdir / "second.csv", batch1, ["c"] * 10, ["bob"] * 10)
    assert main(["label", str(reference), str(path), "--quiet"]) == 0
    steps.append(("label", [str(path), "--quiet"]))
    return steps


def main_driver(workdir: Path, kills_wanted: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    pool = workdir / "pool.parquet"
    ids, *_ = make_pool(pool, n=3000, d=16, c=3, seed=seed)
    init = ["--pool", str(pool), "--id-column", "id", "--embedding-column", "emb",
            "--probs-column", "probs", "--classes", "a,b,c", "--quiet"]
    reference, chaos = workdir / "reference", workdir / "chaos"
    t0 = time.perf_counter()
    assert main(["init", str(reference)] + init) == 0
    steps = script(workdir, reference, ids)
    reference_seconds = time.perf_counter() - t0
    assert main(["init", str(chaos)] + init) == 0
    # Every hook is used once: spread over the steps of its kind, those before the commit
    # first within a step (after a commit the retry is a rerun that never reaches them).
    assigned = {i: [] for i in range(len(steps))}
    for kind in ("select", "label"):
        mine = [i for i, (k, _) in enumerate(steps) if k == kind]
        for j, hook in enumerate(HOOKS[kind]):
            assigned[mine[j % len(mine)]].append(hook)
    acknowledged = {"rounds": {}, "labels": set()}
    kills = hook_kills = 0
    per_step = int(np.ceil(kills_wanted / len(steps)))
    log = workdir / "child.log"
    for step, (kind, args) in enumerate(steps):
        argv = [kind, str(chaos)] + args
        killed_here = 0
        duration = 0.3
        hooks = assigned[step]
        while True:
            fault = delay = None
            if hooks:
                fault = hooks.pop(0)
            elif killed_here < per_step:
                delay = rng.uniform(0, 1.1 * duration)
            start = time.perf_counter()
            pid = run_child(argv, log, fault)
            status = None
            if delay is not None:
                while time.perf_counter() < start + delay:
                    done, status = os.waitpid(pid, os.WNOHANG)
                    if done:
                        break
                    status = None
                    time.sleep(0.001)
                if status is None:
                    os.kill(pid, signal.SIGKILL)
            if status is None:
                _, status = os.waitpid(pid, 0)
            finished = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
            if fault is not None and not os.WIFSIGNALED(status):
                raise AssertionError(f"{argv} never reached the fault point {fault}")
            if os.WIFSIGNALED(status):
                assert os.WTERMSIG(status) == signal.SIGKILL
                kills += 1
                killed_here += 1
                hook_kills += fault is not None
            elif not finished:
                raise AssertionError(f"{argv} failed: {log.read_text()}")
            if finished:
                if fault is None and delay is None:
                    duration = time.perf_counter() - start
                # Acknowledged (exit code 0): what it did must survive every later kill.
                if kind == "select":
                    with Project(chaos, readonly=True) as project:
                        r = project.ledger.query("SELECT max(round) FROM rounds")[0][0]
                        acknowledged["rounds"][r] = [row["id"] for row in project.round_rows(r)]
                else:
                    import pyarrow.csv as pacsv
                    table = pacsv.read_csv(args[0], convert_options=pacsv.ConvertOptions(
                        column_types={"id": "string", "label": "string", "annotator": "string"}))
                    acknowledged["labels"] |= set(zip(table["id"].to_pylist(),
                                                      table["label"].to_pylist(),
                                                      table["annotator"].to_pylist()))
            check(chaos, acknowledged)
            if finished and fault is None and delay is None:
                break       # the command that completes the step after its kills
    # Any file left unwritten by a kill after a commit is written by the next command.
    with Project(chaos) as project:
        project.ensure_round_files()
    want, got = snapshot(reference), snapshot(chaos)
    for table in want:
        assert got[table] == want[table], f"table {table} differs after the kills"
    for r in range(1, 5):
        for name in ("batch.parquet", "batch.csv", "tasks.json"):
            a = (reference / "rounds" / f"round-{r:04d}" / name).read_bytes()
            b = (chaos / "rounds" / f"round-{r:04d}" / name).read_bytes()
            assert a == b, f"round {r} {name} differs"
    return {"kills": kills, "hook_kills": hook_kills, "timed_kills": kills - hook_kills,
            "steps": len(steps), "reference_seconds": round(reference_seconds, 2)}


if __name__ == "__main__":
    summary = main_driver(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
    print(json.dumps(summary))
