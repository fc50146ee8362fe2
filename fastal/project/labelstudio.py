"""Label Studio over HTTP: ``fastal push`` sends pending ids as tasks, ``fastal pull`` imports
the annotations. Standard library only (``urllib``).

Authentication: the token comes from an environment variable, never from a file. Two kinds
are accepted and told apart by their shape:

- a **personal access token** (a JWT refresh token, Label Studio's default since 1.19): it is
  exchanged at ``POST /api/token/refresh`` for a short-lived access token, sent as
  ``Authorization: Bearer ...`` and refreshed again when it expires;
- a **legacy token** (40 hex characters, only where the organization enabled legacy tokens):
  sent as ``Authorization: Token ...``.

``push`` is safe to rerun: it first lists the tasks already in the Label Studio project (by
``data.fastal_id`` and ``data.fastal_round``) and sends only the missing ones, so a push
interrupted after Label Studio created the tasks but before the ledger recorded them does
not create duplicates.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request

from .._errors import ArgumentError, FastalError
from . import _faults, _files, _labels, _ledger

_BATCH = 500


class LabelStudioError(FastalError):
    """Label Studio could not be reached, refused the token, or answered an error."""


def _is_jwt(token: str) -> bool:
    parts = token.split(".")
    return len(parts) == 3 and token.startswith("eyJ")


class Client:
    """A few Label Studio API calls, with either kind of token."""

    def __init__(self, url: str, token: str, *, token_env: str = "the token", timeout=60.0):
        if not url.startswith(("http://", "https://")):
            raise ArgumentError(f"--label-studio must be an http(s) URL; got {url!r}")
        self.url = url.rstrip("/")
        self.token = token.strip()
        self.token_env = token_env
        self.timeout = timeout
        self._access = None

    def _authorization(self, refresh=False) -> str:
        if not _is_jwt(self.token):
            return f"Token {self.token}"
        if self._access is None or refresh:
            answer = self._send("POST", "/api/token/refresh/", {"refresh": self.token},
                                authorization=None)
            if not isinstance(answer, dict) or "access" not in answer:
                raise LabelStudioError(f"Label Studio at {self.url} did not return an access "
                                       f"token for the personal access token in ${self.token_env}")
            self._access = answer["access"]
        return f"Bearer {self._access}"

    def _send(self, method, path, body=None, *, params=None, authorization=""):
        url = self.url + path + (f"?{urllib.parse.urlencode(params)}" if params else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if authorization:
            headers["Authorization"] = authorization
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace")
            if exc.code in (401, 403):
                raise _AuthError(exc.code, detail) from exc
            raise LabelStudioError(f"Label Studio at {self.url} answered {method} {path} with "
                                   f"HTTP {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise LabelStudioError(f"cannot reach Label Studio at {self.url}: "
                                   f"{getattr(exc, 'reason', exc)}") from exc
        try:
            return json.loads(payload) if payload else None
        except json.JSONDecodeError as exc:
            raise LabelStudioError(f"Label Studio at {self.url} answered {method} {path} with "
                                   f"something that is not JSON: {payload[:100]!r}") from exc

    def call(self, method, path, body=None, *, params=None):
        """One API call; a personal access token's expired access token is renewed once."""
        try:
            try:
                return self._send(method, path, body, params=params,
                                  authorization=self._authorization())
            except _AuthError:
                if not _is_jwt(self.token):
                    raise
                return self._send(method, path, body, params=params,
                                  authorization=self._authorization(refresh=True))
        except _AuthError as exc:
            kind = ("personal access token" if _is_jwt(self.token) else
                    "legacy token (legacy tokens work only where the organization enabled "
                    "them; personal access tokens always do)")
            raise LabelStudioError(
                f"Label Studio at {self.url} refused the {kind} in ${self.token_env} (HTTP "
                f"{exc.code}: {exc.detail})") from None

    def tasks(self, project: int, *, all_tasks: bool) -> list:
        """Every task of the project (``all_tasks``) or the annotated ones, with annotations."""
        answer = self.call("GET", f"/api/projects/{project}/export",
                           params={"exportType": "JSON",
                                   "download_all_tasks": "true" if all_tasks else "false"})
        if not isinstance(answer, list):
            raise LabelStudioError(f"Label Studio at {self.url} returned no task list for "
                                   f"project {project}")
        return answer

    def import_tasks(self, project: int, tasks: list) -> list:
        answer = self.call("POST", f"/api/projects/{project}/import", tasks,
                           params={"return_task_ids": "true"})
        return list((answer or {}).get("task_ids") or [])


class _AuthError(Exception):
    def __init__(self, code, detail):
        super().__init__(code)
        self.code, self.detail = code, detail


def client_from_env(url, token_env, timeout) -> Client:
    token = os.environ.get(token_env, "").strip()
    if not token:
        raise ArgumentError(
            f"set the environment variable {token_env} to a Label Studio access token (in "
            f"Label Studio: Account & Settings > Personal Access Token); fastal never reads "
            f"tokens from files or arguments")
    return Client(url, token, token_env=token_env, timeout=timeout)


def push(project, url, ls_project, *, token_env="LABEL_STUDIO_API_KEY", round_number=None,
         timeout=60.0) -> dict:
    """Send pending ids (of one round, or of every round) as Label Studio tasks."""
    client = client_from_env(url, token_env, timeout)
    q = project.ledger.query
    if round_number is not None and not q("SELECT 1 FROM rounds WHERE round=?", (round_number,)):
        raise ArgumentError(f"--round {round_number} does not exist")
    rounds = [round_number] if round_number is not None else [
        r[0] for r in q("SELECT DISTINCT round FROM selections WHERE status='pending' "
                        "ORDER BY round")]
    wanted = []
    for r in rounds:
        pending = {row[0] for row in q("SELECT id FROM selections WHERE round=? AND "
                                       "status='pending'", (r,))}
        wanted += [(r, row) for row in project.round_rows(r) if row["id"] in pending]
    if not wanted:
        return {"sent": 0, "already": 0}
    present = {}
    for task in client.tasks(ls_project, all_tasks=True):
        data = task.get("data") or {}
        if _labels.LS_ID_KEY in data:
            present[(data.get("fastal_round"), data[_labels.LS_ID_KEY])] = task.get("id")
    cfg = project.config
    target = f"{client.url}/projects/{ls_project}"
    recorded = []
    to_send = [(r, row) for r, row in wanted if (r, row["id"]) not in present]
    for r, row in wanted:
        if (r, row["id"]) in present:
            recorded.append((target, r, row["id"], present[(r, row["id"])]))
    for start in range(0, len(to_send), _BATCH):
        part = to_send[start:start + _BATCH]
        tasks = []
        for r, row in part:
            tasks += _files.label_studio_tasks([row], r, from_name=cfg["ls_from_name"],
                                               to_name=cfg["ls_to_name"])
        task_ids = client.import_tasks(ls_project, tasks)
        _faults.point("push:after_import")
        ids = task_ids if len(task_ids) == len(part) else [None] * len(part)
        recorded += [(target, r, row["id"], t) for (r, row), t in zip(part, ids)]
    stamp = _ledger.now()
    with project.ledger.write("push") as conn:
        conn.executemany("INSERT OR REPLACE INTO pushes(target, round, id, task, time) "
                         "VALUES (?, ?, ?, ?, ?)", [(*rec, stamp) for rec in recorded])
    return {"sent": len(to_send), "already": len(wanted) - len(to_send)}


def pull(project, url, ls_project, *, token_env="LABEL_STUDIO_API_KEY", timeout=60.0,
         policy=None):
    """Import the annotations of the Label Studio project into the ledger."""
    client = client_from_env(url, token_env, timeout)
    tasks = client.tasks(ls_project, all_tasks=False)
    where = f"Label Studio {client.url} project {ls_project}"
    annotations = _labels.label_studio_annotations(
        tasks, where, project.config["id_type"], from_name=project.config["ls_from_name"])
    return project.import_annotations(annotations, f"label-studio {client.url}/projects/"
                                                   f"{ls_project}", policy=policy)
