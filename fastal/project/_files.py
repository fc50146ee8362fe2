"""Files a user asked for, written all or nothing: temporary name, fsync, rename, fsync dir.

A round's batch files (Parquet, CSV, Label Studio tasks) are derived from the ledger alone,
so a command killed after the ledger committed but before the files were renamed leaves
nothing half-written, and the next command writes them again (``ensure_round_files``).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .._errors import FileError
from . import _faults

BATCH_FILES = ("batch.parquet", "batch.csv", "tasks.json")


def round_dir(project_dir: Path, round_number: int) -> Path:
    return Path(project_dir) / "rounds" / f"round-{round_number:04d}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write) -> None:
    """Call ``write(file_object)`` on a temporary file, fsync it, rename it to ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(tmp, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            _faults.point(f"file:{path.name}:before_rename")
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        _fsync_dir(path.parent)
    except OSError as exc:
        raise FileError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_table(path: Path, table: pa.Table) -> None:
    """Parquet or CSV by suffix, atomically."""
    if str(path).lower().endswith(".csv"):
        atomic_write(path, lambda f: pacsv.write_csv(table, f))
    else:
        atomic_write(path, lambda f: pq.write_table(table, f))


def write_json(path: Path, obj) -> None:
    data = json.dumps(obj, indent=1, ensure_ascii=False).encode()
    atomic_write(path, lambda f: f.write(data))


def batch_table(rows: list, data_columns: list, round_number: int) -> pa.Table:
    """The batch as a table: id, rank, score, strategy, then round, the model's guess, data."""
    cols = {
        "id": [r["id"] for r in rows],
        "rank": pa.array([r["rank"] for r in rows], type=pa.int64()),
        "score": pa.array([r["score"] for r in rows], type=pa.float64()),
        "strategy": [r["strategy"] for r in rows],
        "round": pa.array([round_number] * len(rows), type=pa.int64()),
        "predicted": pa.array([r["predicted"] for r in rows], type=pa.string()),
        "confidence": pa.array([r["confidence"] for r in rows], type=pa.float64()),
        "uncertainty": pa.array([r["uncertainty"] for r in rows], type=pa.float64()),
    }
    for c in data_columns:
        cols[c] = [r["data"].get(c) for r in rows]
    return pa.table(cols)


def label_studio_tasks(rows: list, round_number: int, *, from_name: str, to_name: str,
                       id_key: str = "fastal_id") -> list:
    """One Label Studio task per row: its data, and the model's guess as a prediction.

    ``data`` carries the row's data columns plus ``fastal_id`` and ``fastal_round`` (how
    ``pull`` and ``label`` find the row again). The prediction's ``score`` is the selection
    score, so annotators can sort the task list by it; its result is the model's top class
    as a ``choices`` answer for the control ``from_name`` on the object ``to_name``.
    """
    tasks = []
    for r in rows:
        task = {"data": {**r["data"], id_key: r["id"], "fastal_round": round_number,
                         "fastal_rank": r["rank"]}}
        if r["predicted"] is not None:
            task["predictions"] = [{
                "model_version": f"fastal round {round_number} ({r['strategy']})",
                "score": float(r["score"]) if r["score"] is not None else 0.0,
                "result": [{"from_name": from_name, "to_name": to_name, "type": "choices",
                            "value": {"choices": [r["predicted"]]}}],
            }]
        tasks.append(task)
    return tasks


def write_round_files(directory: Path, rows: list, data_columns: list, round_number: int,
                      *, from_name: str, to_name: str) -> list[Path]:
    """batch.parquet, batch.csv (with an empty ``label`` column to fill in), tasks.json."""
    table = batch_table(rows, data_columns, round_number)
    out = round_dir(directory, round_number)
    paths = [out / name for name in BATCH_FILES]
    write_table(paths[0], table)
    csv_table = table.append_column("label", pa.array([None] * len(rows), type=pa.string()))
    write_table(paths[1], csv_table)
    write_json(paths[2], label_studio_tasks(rows, round_number, from_name=from_name,
                                            to_name=to_name))
    return paths


def csv_text(table: pa.Table) -> str:
    sink = io.BytesIO()
    pacsv.write_csv(table, sink)
    return sink.getvalue().decode()
