"""The project commands end to end: through ``fastal.cli.main`` and, where processes matter
(SIGKILL, two imports at once, peak memory), through real subprocesses."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from fastal.cli import main
from project_helpers import make_pool, write_labels, write_outputs

HERE = Path(__file__).parent
FASTAL = [sys.executable, "-m", "fastal"]


@pytest.fixture
def project(tmp_path):
    ids, emb, probs = make_pool(tmp_path / "pool.parquet", n=1500)
    assert main(["init", str(tmp_path / "p"), "--pool", str(tmp_path / "pool.parquet"),
                 "--id-column", "id", "--embedding-column", "emb", "--probs-column", "probs",
                 "--data-column", "text", "--classes", "a,b,c", "--quiet"]) == 0
    return tmp_path / "p", ids, probs


def test_one_round_through_the_commands(tmp_path, project, capsys):
    directory, ids, probs = project
    d = str(directory)
    write_outputs(tmp_path / "out.parquet", ids, probs[::-1].copy(), seed=3)
    assert main(["select", d, "--k", "30", "--outputs", str(tmp_path / "out.parquet"),
                 "--strategy", "uncertain_kcenter", "--option", "beta=4"]) == 0
    err = capsys.readouterr().err
    assert "round 1: picked 30 ids by uncertain_kcenter" in err and "batch.csv" in err
    batch = pq.read_table(directory / "rounds" / "round-0001" / "batch.parquet")
    write_labels(tmp_path / "l.csv", batch["id"].to_pylist()[:20], ["a", "b"] * 10)
    assert main(["label", d, str(tmp_path / "l.csv")]) == 0
    assert "20 new label(s)" in capsys.readouterr().err
    assert main(["status", d, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["labeled"], status["pending"]) == (20, 10)
    assert status["rounds"][0]["strategy"] == "uncertain_kcenter"
    assert main(["status", d]) == 0
    assert "labeled 20  pending 10" in capsys.readouterr().out
    assert main(["requeue", d, "--round", "1"]) == 0
    assert main(["export", d, "--out", str(tmp_path / "train.parquet"), "--columns", "emb"]) == 0
    assert pq.read_table(tmp_path / "train.parquet").num_rows == 20
    assert main(["plot", d, "--out", str(tmp_path / "p.png")]) == 0
    assert main(["select", d, "--k", "10", "--dry-run"]) == 0
    assert "estimated peak memory" in capsys.readouterr().out
    # The stateless form still works on a pool file, and refuses project options.
    assert main(["select", str(tmp_path / "pool.parquet"), "--k", "5", "--column", "probs"]) == 0
    assert main(["select", str(tmp_path / "pool.parquet"), "--k", "5", "--dry-run"]) == 2
    assert main(["select", d, "--k", "5", "--labeled", "x.txt"]) == 2


@pytest.mark.parametrize("argv, message", [
    (["init", "{tmp}/q", "--pool", "{tmp}/missing.parquet", "--id-column", "id"], "pool path does not exist"),
    (["init", "{tmp}/q", "--pool", "{tmp}/pool.parquet", "--id-column", "nope"], "no id column 'nope'"),
    (["select", "{dir}", "--k", "99999"], "larger than the unlabeled pool"),
    (["select", "{dir}", "--k", "5", "--outputs", "{tmp}/pool.parquet", "--outputs-column", "emb"], "at least 2 classes|classes"),
    (["select", "{dir}", "--k", "5", "--strategy", "nope"], "--strategy must be one of"),
    (["label", "{dir}", "{tmp}/missing.csv"], "annotation file does not exist"),
    (["requeue", "{dir}", "--round", "4"], "--round 4 does not exist"),
    (["status", "{tmp}"], "is not a fastal project"),
    (["push", "{dir}", "--label-studio", "http://127.0.0.1:9", "--project", "1", "--token-env", "FASTAL_NO_SUCH_VARIABLE"], "set the environment variable FASTAL_NO_SUCH_VARIABLE"),
])
def test_user_errors_are_one_line_and_exit_2(tmp_path, project, argv, message, capsys):
    directory, *_ = project
    argv = [a.format(tmp=tmp_path, dir=directory) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastal: error: ") and err.count("\n") == 1
    import re
    assert re.search(message, err), err


def test_a_corrupt_ledger_is_refused_by_the_real_command(tmp_path, project):
    directory, *_ = project
    (directory / "ledger.sqlite").write_bytes(b"not a database at all" * 10)
    done = subprocess.run(FASTAL + ["status", str(directory)], capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("fastal: error: ") and "not a SQLite database" in done.stderr


def test_help_lists_every_command_with_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for name in ("init", "select", "label", "requeue", "status", "plot", "export", "push", "pull"):
        assert name in text
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        assert "example" in capsys.readouterr().out


def test_sigkill_in_a_real_process_between_commit_steps(tmp_path, project):
    """The real entry point, killed inside the select transaction (the other moments, after
    the commit and in the file writes, are in test_fifty_sigkills_during_select_and_label)."""
    directory, *_ = project
    env = {**os.environ, "FASTAL_FAULT_POINT": "select:after_selections"}
    done = subprocess.run(FASTAL + ["select", str(directory), "--k", "20", "--quiet"], env=env,
                          capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL
    conn = sqlite3.connect(directory / "ledger.sqlite")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM rounds").fetchone()[0] == 0       # no half round
    assert conn.execute("SELECT count(*) FROM selections").fetchone()[0] == 0
    conn.close()
    # The next command completes the round: the same round, its files written.
    assert main(["select", str(directory), "--k", "20", "--quiet"]) == 0
    assert (directory / "rounds" / "round-0001" / "batch.csv").exists()
    assert not (directory / "rounds" / "round-0002").exists()
    conn = sqlite3.connect(directory / "ledger.sqlite")
    assert conn.execute("SELECT count(*) FROM selections").fetchone()[0] == 20
    conn.close()


def test_fifty_sigkills_during_select_and_label(tmp_path):
    """50 kills at random moments and at every hook; see tests/kill_driver.py."""
    done = subprocess.run([sys.executable, str(HERE / "kill_driver.py"), str(tmp_path), "50", "7"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["kills"] >= 50 and summary["hook_kills"] == 11, summary


def test_two_label_commands_at_once_both_land(tmp_path, project):
    directory, ids, _ = project
    assert main(["select", str(directory), "--k", "200", "--quiet"]) == 0
    batch = pq.read_table(directory / "rounds" / "round-0001" / "batch.parquet")["id"].to_pylist()
    write_labels(tmp_path / "a.csv", batch[:100], ["a"] * 100, ["ann"] * 100)
    write_labels(tmp_path / "b.csv", batch[50:], ["b"] * 150, ["bob"] * 150)
    procs = [subprocess.Popen(FASTAL + ["label", str(directory), str(tmp_path / f), "--quiet"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for f in ("a.csv", "b.csv", "a.csv")]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert all(rc == 0 for *_, rc in results), results
    conn = sqlite3.connect(directory / "ledger.sqlite")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM labels").fetchone()[0] == 250
    assert conn.execute("SELECT count(*) FROM conflicts").fetchone()[0] == 50
    assert conn.execute("SELECT count(*) FROM selections WHERE status='labeled'").fetchone()[0] == 200
    conn.close()


_MEASURE = textwrap.dedent("""
    import contextlib, io, json, sys
    from fastal.cli import main
    argv = sys.argv[1:]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv + ["--dry-run"]) == 0
    line = next(l for l in out.getvalue().splitlines() if l.startswith("estimated peak memory"))
    value, unit = line.split(":")[1].split()
    estimate = float(value) * {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit]
    assert main(argv + ["--quiet"]) == 0
    # VmHWM, not ru_maxrss: the latter keeps the parent's size across fork + exec.
    peak = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    print(json.dumps({"estimate": estimate, "peak": peak}))
""")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Run both strategies once on a tiny pool, so that Numba's one-off compilation (whose
    LLVM memory is not part of a select) is cached before the peak is measured."""
    tmp = tmp_path_factory.mktemp("warm")
    make_pool(tmp / "pool.parquet", n=3000, d=96, c=10)
    assert main(["init", str(tmp / "p"), "--pool", str(tmp / "pool.parquet"), "--id-column", "id",
                 "--embedding-column", "emb", "--probs-column", "probs", "--quiet"]) == 0
    code = ("from fastal.cli import main; import sys; d = sys.argv[1]; "
            "[main(['select', d, '--k', '5', '--strategy', s, '--quiet', '--new-round']) "
            "for s in ('margin', 'kcenter')]")
    subprocess.run([sys.executable, "-c", code, str(tmp / "p")], check=True, timeout=600)


@pytest.mark.parametrize("strategy", ["margin", "kcenter"])
def test_the_memory_estimate_is_within_2x_of_the_measured_peak(tmp_path, strategy, compiled):
    make_pool(tmp_path / "pool.parquet", n=100_000, d=96, c=10, row_group=50_000)
    assert main(["init", str(tmp_path / "p"), "--pool", str(tmp_path / "pool.parquet"),
                 "--id-column", "id", "--embedding-column", "emb", "--probs-column", "probs",
                 "--quiet"]) == 0
    done = subprocess.run([sys.executable, "-c", _MEASURE, "select", str(tmp_path / "p"),
                           "--k", "50", "--strategy", strategy], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    numbers = json.loads(done.stdout.strip().splitlines()[-1])
    ratio = numbers["estimate"] / numbers["peak"]
    assert 0.5 <= ratio <= 2.0, numbers


def test_the_readme_round_runs_as_written(tmp_path, monkeypatch, capsys):
    """The commands of README.md's "Annotation rounds" (push/pull: their `fastal label`
    alternative; Label Studio itself is tested in test_project_labelstudio.py)."""
    import re
    import shlex

    text = (HERE.parent / "README.md").read_text()
    block = re.search(r"## Annotation rounds\n.*?```bash\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    ids, emb, probs = make_pool(tmp_path / "pool.parquet", n=3000)
    (tmp_path / "preds").mkdir()
    write_outputs(tmp_path / "preds" / "round1.parquet", ids, probs, seed=2)
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        command, _, comment = line.partition("#")
        if not command.strip():
            continue
        if " push " in command or " pull " in command:
            alternative = re.search(r"or: (fastal label .*)", comment)
            if not alternative:
                continue
            command = alternative.group(1)
        commands.append(shlex.split(command))
    assert [c[1] for c in commands] == ["init", "select", "label", "status"]
    for argv in commands:
        assert argv[0] == "fastal"
        if argv[1] == "label":
            batch = pq.read_table("run1/rounds/round-0001/batch.parquet")["id"].to_pylist()
            write_labels(argv[3], batch[:600], ["cat", "dog", "bird"] * 200)
        assert main(argv[1:]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "labeled 600  pending 400" in out and "cat 200" in out


def test_unwritable_outputs_are_one_line_errors(tmp_path, project, capsys):
    directory, *_ = project
    (tmp_path / "file").write_text("x")
    assert main(["export", str(directory), "--out", str(tmp_path / "file" / "train.parquet")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastal: error: cannot write") and err.count("\n") == 1
    assert main(["init", str(tmp_path / "file" / "p"), "--pool", str(tmp_path / "pool.parquet"),
                 "--id-column", "id"]) == 2
    assert "cannot create the project directory" in capsys.readouterr().err
