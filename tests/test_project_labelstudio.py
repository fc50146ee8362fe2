"""``fastal push`` / ``fastal pull`` against a real Label Studio server started here.

Label Studio lives in its own virtualenv (its pins clash with ours): .ci/run installs it
under ~/.cache/fastal-label-studio; ``FASTAL_LABEL_STUDIO`` may name another executable.
One server per test session (SQLite backend, a free local port, a temporary data folder),
stopped at the end. Where it is not installed or does not start, the test is skipped and
the reason is shown in the warnings summary, never silently.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import warnings
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fastal.cli import main
from project_helpers import make_pool

LABEL_STUDIO = os.environ.get("FASTAL_LABEL_STUDIO") or str(
    Path.home() / ".cache" / "fastal-label-studio" / "venv" / "bin" / "label-studio")
TEMPLATE = Path(LABEL_STUDIO).resolve().parent.parent.parent / "template"
START_TIMEOUT = float(os.environ.get("FASTAL_LABEL_STUDIO_START_TIMEOUT", "420"))
CONFIG = ('<View><Text name="text" value="$text"/><Choices name="label" toName="text">'
          '<Choice value="a"/><Choice value="b"/><Choice value="c"/></Choices></View>')


def _skip(reason):
    warnings.warn(f"Label Studio test skipped: {reason}")
    pytest.skip(reason)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(url, method, path, token, body=None):
    request = urllib.request.Request(
        url + path, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read() or b"null")


def _start(data: Path, extra: list):
    """Start a server on ``data``; returns (process, url) once /health answers, else skips."""
    port = _free_port()
    # Offline: no error reports, analytics or version checks leave this machine.
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data), "DJANGO_DB": "sqlite",
           "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "", "LATEST_VERSION_CHECK": "false",
           "COLLECT_ANALYTICS": "false"}
    env.pop("HOST", None)
    log = data / "server.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [LABEL_STUDIO, "start", "--no-browser", "--host", "127.0.0.1", "--port", str(port),
             "--data-dir", str(data), "--username", "fastal@example.com"] + extra,
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            _skip(f"Label Studio exited with code {proc.returncode} while starting: "
                  f"{log.read_text(errors='replace')[-800:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            pass
        if time.monotonic() > deadline:
            _stop(proc)
            _skip(f"Label Studio did not answer {url}/health within {START_TIMEOUT:.0f} s")
        time.sleep(1)


def _stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _template() -> Path:
    """A migrated data folder with a user and a legacy token, made once and cached.

    Its first start (the database migrations) takes minutes on a busy 2-core machine; a copy
    starts in about 15 s. .ci/run makes it right after installing Label Studio.
    """
    template = TEMPLATE
    if (template / "ready").exists():
        return template
    building = template.with_name(f"{template.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    token = secrets.token_hex(20)
    proc, _ = _start(building, ["--password", secrets.token_hex(8), "--user-token", token,
                                "--enable-legacy-api-token"])
    _stop(proc)
    (building / "legacy-token").write_text(token)
    (building / "ready").write_text("ok")
    shutil.rmtree(template, ignore_errors=True)
    os.replace(building, template)
    return template


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):
    if not os.access(LABEL_STUDIO, os.X_OK):
        _skip(f"Label Studio is not installed at {LABEL_STUDIO} (.ci/run installs it; or set "
              f"FASTAL_LABEL_STUDIO)")
    template = _template()
    data = tmp_path_factory.mktemp("label-studio") / "data"
    shutil.copytree(template, data)
    (data / "server.log").write_bytes(b"")
    proc, url = _start(data, ["--password", secrets.token_hex(8)])
    try:
        yield url, (template / "legacy-token").read_text().strip()
    finally:
        _stop(proc)


if __name__ == "__main__":  # .ci/run: build the template once, right after installing
    print(f"Label Studio template data folder: {_template()}")


def test_push_and_pull_round_trip(tmp_path, label_studio, monkeypatch, capsys):
    url, legacy = label_studio
    ls_project = _api(url, "POST", "/api/projects", legacy,
                      {"title": "fastal round trip", "label_config": CONFIG})["id"]
    personal = _api(url, "POST", "/api/token/", legacy)["token"]     # a personal access token
    assert personal.count(".") == 2
    make_pool(tmp_path / "pool.parquet", n=500)
    d = str(tmp_path / "p")
    assert main(["init", d, "--pool", str(tmp_path / "pool.parquet"), "--id-column", "id",
                 "--probs-column", "probs", "--data-column", "text", "--classes", "a,b,c",
                 "--quiet"]) == 0
    assert main(["select", d, "--k", "12", "--quiet"]) == 0
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", personal)
    monkeypatch.setenv("FASTAL_TEST_LEGACY_TOKEN", legacy)
    monkeypatch.setenv("FASTAL_TEST_BAD_TOKEN", "0" * 40)
    ls = ["--label-studio", url, "--project", str(ls_project)]
    assert main(["push", d] + ls) == 0
    assert "sent 12 task(s)" in capsys.readouterr().err
    assert main(["push", d] + ls) == 0                       # rerun: nothing duplicated
    assert "sent 0 task(s)" in capsys.readouterr().err
    tasks = _api(url, "GET", f"/api/projects/{ls_project}/export?exportType=JSON&download_all_tasks=true", legacy)
    batch = pq.read_table(tmp_path / "p" / "rounds" / "round-0001" / "batch.parquet")
    assert len(tasks) == 12
    by_id = {t["data"]["fastal_id"]: t for t in tasks}
    assert set(by_id) == set(batch["id"].to_pylist())
    first = by_id[batch["id"][0].as_py()]
    assert first["data"]["text"] == batch["text"][0].as_py() and first["total_predictions"] == 1

    def annotate(task, choice, cancelled=False):
        result = [] if cancelled else [{"from_name": "label", "to_name": "text", "type": "choices",
                                        "value": {"choices": [choice]}}]
        return _api(url, "POST", f"/api/tasks/{task['id']}/annotations/", legacy,
                    {"result": result, "was_cancelled": cancelled})

    ids = batch["id"].to_pylist()
    for j, i in enumerate(ids[:8]):
        annotate(by_id[i], "abc"[j % 3])
    annotate(by_id[ids[8]], None, cancelled=True)
    second = annotate(by_id[ids[0]], "c")                    # a disagreeing second annotation
    assert main(["pull", d] + ls) == 0
    err = capsys.readouterr().err
    assert "9 new label(s)" in err and "1 skipped by annotators" in err
    assert "1 conflicting label(s)" in err
    assert main(["pull", d] + ls) == 0                       # idempotent
    assert "0 new label(s)" in capsys.readouterr().err
    _api(url, "PATCH", f"/api/annotations/{second['id']}/", legacy,
         {"result": [{"from_name": "label", "to_name": "text", "type": "choices",
                      "value": {"choices": ["b"]}}]})
    assert main(["pull", d] + ls + ["--token-env", "FASTAL_TEST_LEGACY_TOKEN"]) == 0
    assert "1 new label(s)" in capsys.readouterr().err       # the edit, as a new annotation
    assert main(["status", d, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["labeled"], status["skipped"], status["pending"]) == (8, 1, 3)
    assert main(["export", d, "--out", str(tmp_path / "train.parquet"), "--quiet"]) == 0
    labels = dict(zip(*pq.read_table(tmp_path / "train.parquet").select(["id", "label"]).to_pydict().values()))
    assert labels[ids[0]] == "b" and labels[ids[1]] == "b" and len(labels) == 8
    assert main(["push", d] + ls + ["--token-env", "FASTAL_TEST_BAD_TOKEN"]) == 2
    assert "refused the legacy token" in capsys.readouterr().err
    # The next round: only its ids are sent.
    assert main(["select", d, "--k", "5", "--quiet"]) == 0
    assert main(["push", d] + ls + ["--round", "2"]) == 0
    assert "sent 5 task(s)" in capsys.readouterr().err
    tasks = _api(url, "GET", f"/api/projects/{ls_project}/export?exportType=JSON&download_all_tasks=true", legacy)
    assert len(tasks) == 17
