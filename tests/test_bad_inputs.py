"""Every case of the bad-input corpus (``tests/bad_inputs.py``) ends as it says.

A bad input raises exactly the stated :class:`fastal.FastalError` subclass, with the stated
fragment in its message and never from inside a Numba kernel; a valid-but-extreme input
gives the correct answer. CLI cases go through ``fastal.cli.main(argv)``: exit code 2 and a
one-line ``fastal: error: ...``. The session prints "bad inputs tried: N" and a count per
class (``tests/conftest.py``; also with ``-s`` at the end of this module).
"""

import traceback
from collections import Counter
from pathlib import Path

import pytest

import fastal
from fastal import FastalError, cli

from bad_inputs import CASES

#: class name -> cases run (filled as the cases run; printed by the session summary)
TALLY: Counter = Counter()
KERNELS = str(Path(fastal.__file__).parent / "_kernels")


def _outcome(case):
    return "valid (correct answer)" if case.raises is None else case.raises.__name__


def _assert_expected(case, exc):
    assert exc is not None, f"{case.id}: expected {case.raises.__name__}, nothing was raised"
    assert type(exc) is case.raises, (
        f"{case.id}: expected {case.raises.__name__}, got {type(exc).__name__}: {exc}")
    assert case.match in str(exc), f"{case.id}: {case.match!r} not in message {str(exc)!r}"
    innermost = traceback.extract_tb(exc.__traceback__)[-1].filename
    assert not innermost.startswith(KERNELS), f"{case.id}: raised inside a kernel ({innermost})"
    # a FastalError is a ValueError; a FileError is an OSError as well
    assert isinstance(exc, ValueError) and (case.raises is not fastal.FileError or isinstance(exc, OSError))


def _run_cli(case, files, monkeypatch, capsys):
    argv = case.call(files)
    name = argv[0]
    seen = {}
    runner = cli._COMMANDS[name]

    def recording(args):
        try:
            return runner(args)
        except BaseException as exc:
            seen["exc"] = exc
            raise

    monkeypatch.setitem(cli._COMMANDS, name, recording)
    capsys.readouterr()
    code = cli.main(argv)
    err = capsys.readouterr().err
    return code, err, seen.get("exc")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, tmp_path, monkeypatch, capsys):
    from bad_inputs import Files

    files = Files(tmp_path)
    TALLY[_outcome(case)] += 1
    if case.cli:
        code, err, exc = _run_cli(case, files, monkeypatch, capsys)
        if case.raises is None:
            assert code == 0, err
            return
        _assert_expected(case, exc)
        assert code == 2, f"{case.id}: exit code {code}"
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines and lines[-1] == f"fastal: error: {exc}", err
        assert "Traceback" not in err
        return
    try:
        result = case.call(files)
    except FastalError as exc:
        if case.raises is None:
            raise AssertionError(f"{case.id}: a valid input was refused: {exc}") from exc
        _assert_expected(case, exc)
        return
    assert case.raises is None, f"{case.id}: expected {case.raises.__name__}; returned {result!r}"
    case.check(result)


def test_corpus_is_large_and_every_class_is_covered():
    classes = Counter(_outcome(c) for c in CASES)
    assert len(CASES) >= 150, len(CASES)
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
    for name in ("DataError", "ArgumentError", "FileError", "LedgerError", "valid (correct answer)"):
        assert classes[name] > 0, name
    print(f"\nbad inputs in the corpus: {len(CASES)} ({', '.join(f'{k}: {v}' for k, v in sorted(classes.items()))})")


def summary_lines():
    """The lines the session summary prints (empty when no case ran)."""
    n = sum(TALLY.values())
    if not n:
        return []
    return [f"bad inputs tried: {n}"] + [f"  {name}: {count}" for name, count in sorted(TALLY.items())]


class _ClosedPipe:
    """A stdout whose reader has gone away (``fastal score ... | head``)."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_pipe_ends_the_command_quietly(capsys, monkeypatch):  # monkeypatch undone first
    monkeypatch.setattr("sys.stdout", _ClosedPipe())
    assert cli.main(["methods"]) == cli.EXIT_BROKEN_PIPE
    assert capsys.readouterr().err == ""


def test_a_closed_pipe_in_a_real_process_is_quiet(tmp_path):
    import os
    import subprocess
    import sys

    script = tmp_path / "flood.py"
    script.write_text(
        "import sys\nfrom fastal import cli\n"
        "def flood(args):\n    for i in range(10**6):\n        print(i)\n    return 0\n"
        "cli._COMMANDS['methods'] = flood\nsys.exit(cli.main(['methods']))\n")
    env = {**os.environ, "PYTHONPATH": str(Path(fastal.__file__).parent.parent)}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    assert proc.stdout.readline() == b"0\n"
    proc.stdout.close()  # what `head -1` does after its line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == cli.EXIT_BROKEN_PIPE, err
    assert err == ""
