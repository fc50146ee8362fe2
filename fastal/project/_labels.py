"""Annotation files in: CSV, Parquet, JSON Lines, and Label Studio's JSON export.

Each reader returns :class:`Annotations`: parallel lists of id, label, annotator, time, a
key that identifies the annotation (importing it twice is a no-op), and a skip flag (the
annotator skipped the task: Label Studio's "cancelled" annotations). Rows without a label
are not annotations yet (an annotator has not filled them in) and are counted, not stored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .._errors import ArgumentError, DataError, FileError

FORMATS = ("csv", "parquet", "jsonl", "label-studio")
LS_ID_KEY = "fastal_id"


@dataclass
class Annotations:
    """What one annotation file says, one entry per annotation."""

    ids: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    annotators: list = field(default_factory=list)
    times: list = field(default_factory=list)
    keys: list = field(default_factory=list)
    skips: list = field(default_factory=list)
    unlabeled: int = 0          # rows with an empty label (not annotated yet)
    foreign: int = 0            # Label Studio tasks without data.fastal_id (not fastal's)
    rows: int = 0               # rows (tasks) read

    def add(self, id_, label, annotator, time, key, skip=False):
        self.ids.append(id_)
        self.labels.append(label)
        self.annotators.append(annotator)
        self.times.append(time)
        self.keys.append(key)
        self.skips.append(skip)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def detect_format(path: Path) -> str:
    """The annotation format of ``path`` from its suffix and first bytes."""
    lower = path.name.lower()
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as exc:
        raise FileError(f"cannot read the annotation file {path}: {exc}") from exc
    if head.startswith(b"PAR1"):
        return "parquet"
    if lower.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if lower.endswith(".json"):
        return "label-studio" if head.lstrip().startswith(b"[") else "jsonl"
    if lower.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    raise FileError(f"cannot tell the format of the annotation file {path}: expected a .csv, "
                    f".parquet, .jsonl or Label Studio .json export")


def _label_text(value) -> str | None:
    """A label as the ledger stores it (text), or None for 'not labeled'."""
    if value is None:
        return None
    if isinstance(value, float):
        if value != value:  # NaN: an empty cell
            return None
        if value.is_integer():
            value = int(value)
    if isinstance(value, bool):
        value = int(value)
    text = str(value).strip()
    return text or None


def _key(id_, label, annotator) -> str:
    return json.dumps(["file", id_, label, annotator], ensure_ascii=False)


def _from_table(table: pa.Table, path: Path, id_column: str, label_column: str,
                annotator_column: str | None, id_kind: str) -> Annotations:
    names = table.column_names
    for what, col in (("--id-column", id_column), ("--label-column", label_column)):
        if col not in names:
            raise DataError(f"the annotation file {path} has no column {col!r} ({what}); "
                            f"columns are: {', '.join(names)}")
    if annotator_column is not None and annotator_column not in names:
        raise DataError(f"the annotation file {path} has no annotator column "
                        f"{annotator_column!r}; columns are: {', '.join(names)}")
    ids = _cast_ids(table.column(id_column), path, id_column, id_kind)
    labels = table.column(label_column).to_pylist()
    annotators = (table.column(annotator_column).to_pylist() if annotator_column
                  else [None] * len(ids))
    out = Annotations(rows=len(ids))
    for row, (i, lab, ann) in enumerate(zip(ids, labels, annotators)):
        if i is None:
            raise DataError(f"the annotation file {path} has an empty id at row {row}")
        text = _label_text(lab)
        if text is None:
            out.unlabeled += 1
            continue
        ann = None if ann is None else str(ann)
        out.add(i, text, ann, None, _key(i, text, ann))
    return out


def _cast_ids(column, path, id_column, id_kind):
    target = pa.int64() if id_kind == "int" else pa.string()
    try:
        return column.cast(target).to_pylist()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(f"ids in column {id_column!r} of {path} must be "
                        f"{'integers' if id_kind == 'int' else 'strings'} like the pool's; "
                        f"{exc}") from exc


def _cast_id(value, path, where, id_kind):
    if id_kind == "int":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise DataError(f"{where} of {path}: id {value!r} is not an integer like the pool's ids")
        try:
            return int(value)
        except ValueError:
            raise DataError(f"{where} of {path}: id {value!r} is not an integer like the "
                            f"pool's ids") from None
    if value is None or isinstance(value, (dict, list)):
        raise DataError(f"{where} of {path}: id {value!r} is not a string like the pool's ids")
    return str(value)


def read_table_file(path: Path, fmt: str, id_column, label_column, annotator_column,
                    id_kind) -> Annotations:
    try:
        if fmt == "parquet":
            table = pq.read_table(path)
        else:
            types = {id_column: pa.int64() if id_kind == "int" else pa.string(),
                     label_column: pa.string()}
            if annotator_column:
                types[annotator_column] = pa.string()
            delimiter = "\t" if path.name.lower().endswith(".tsv") else ","
            table = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=delimiter),
                                   convert_options=pacsv.ConvertOptions(column_types=types))
        table.column_names  # noqa: B018  (a header that is not UTF-8 fails here, not later)
    except (pa.ArrowInvalid, pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise FileError(f"cannot read the annotation file {path} as {fmt}: {exc}") from exc
    if annotator_column is None and "annotator" in table.column_names:
        annotator_column = "annotator"
    return _from_table(table, path, id_column, label_column, annotator_column, id_kind)


def read_jsonl(path: Path, id_column, label_column, annotator_column, id_kind) -> Annotations:
    out = Annotations()
    annotator_column = annotator_column or "annotator"
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise FileError(f"line {line_no} of {path} is not JSON: {exc}") from exc
            if not isinstance(obj, dict) or id_column not in obj:
                raise DataError(f"line {line_no} of {path} must be an object with keys "
                                f"{id_column!r} and {label_column!r}; got {line.strip()[:80]}")
            out.rows += 1
            i = _cast_id(obj[id_column], path, f"line {line_no}", id_kind)
            text = _label_text(obj.get(label_column))
            if text is None:
                out.unlabeled += 1
                continue
            ann = obj.get(annotator_column)
            ann = None if ann is None else str(ann)
            out.add(i, text, ann, None, _key(i, text, ann))
    return out


def _choice(result: list, where: str, from_name: str | None):
    """The class chosen in one Label Studio annotation result (a 'choices' answer)."""
    picks = []
    for item in result or []:
        if item.get("type") != "choices":
            continue
        if from_name and item.get("from_name") != from_name:
            continue
        picks.extend(item.get("value", {}).get("choices", []))
    if len(picks) > 1:
        raise DataError(f"{where} has {len(picks)} choices {picks}; fastal stores one class "
                        f"per annotation (a single-choice classification config)")
    return picks[0] if picks else None


def label_studio_annotations(tasks, where: str, id_kind: str, *, id_key: str = LS_ID_KEY,
                             from_name: str | None = None) -> Annotations:
    """Annotations of Label Studio tasks (its JSON export or its API's task list)."""
    if not isinstance(tasks, list):
        raise DataError(f"{where} must be a Label Studio JSON export (a list of tasks); "
                        f"got {type(tasks).__name__}")
    out = Annotations()
    for t, task in enumerate(tasks):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise DataError(f"task {t} of {where} has no 'data' object; is this a Label "
                            f"Studio JSON export?")
        out.rows += 1
        data = task["data"]
        if id_key not in data:
            out.foreign += 1   # a task not made by fastal: not ours to import
            continue
        i = _cast_id(data[id_key], where, f"task {task.get('id', t)}", id_kind)
        annotations = task.get("annotations") or []
        if not annotations:
            out.unlabeled += 1
        for a in annotations:
            who = a.get("completed_by")
            if isinstance(who, dict):
                who = who.get("email") or who.get("id")
            who = None if who is None else str(who)
            stamp = a.get("updated_at") or a.get("created_at")
            key = json.dumps(["label-studio", a.get("id"), stamp])
            if a.get("was_cancelled"):
                out.add(i, None, who, stamp, key, skip=True)
                continue
            label = _choice(a.get("result"), f"annotation {a.get('id')} of task "
                                             f"{task.get('id', t)} in {where}", from_name)
            if label is None:
                out.unlabeled += 1
                continue
            out.add(i, str(label), who, stamp, key)
    return out


def read_annotations(path, *, fmt=None, id_column="id", label_column="label",
                     annotator_column=None, id_kind="str") -> Annotations:
    """Read an annotation file of any supported format (detected unless ``fmt`` is given)."""
    path = Path(path)
    if not path.exists():
        raise FileError(f"annotation file does not exist: {path}")
    if path.is_dir():
        raise FileError(f"annotation file {path} is a directory; pass one file")
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise ArgumentError(f"--format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if fmt in ("csv", "parquet"):
        return read_table_file(path, fmt, id_column, label_column, annotator_column, id_kind)
    if fmt == "jsonl":
        return read_jsonl(path, id_column, label_column, annotator_column, id_kind)
    try:
        with open(path, encoding="utf-8") as f:
            tasks = json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FileError(f"cannot read {path} as a Label Studio JSON export: {exc}") from exc
    if not isinstance(tasks, list):
        raise DataError(f"{path} must hold a JSON list of tasks (a Label Studio JSON export); "
                        f"got a JSON {type(tasks).__name__}")
    if tasks and isinstance(tasks[0], dict) and "annotations" not in tasks[0] \
            and "data" not in tasks[0]:
        # JSON_MIN export or a plain list of records: {id, label, annotator}
        out = Annotations()
        for line_no, obj in enumerate(tasks):
            key_id = id_column if id_column in obj else LS_ID_KEY
            if key_id not in obj:
                raise DataError(f"record {line_no} of {path} has no {id_column!r} key")
            out.rows += 1
            i = _cast_id(obj[key_id], path, f"record {line_no}", id_kind)
            text = _label_text(obj.get(label_column))
            if text is None:
                out.unlabeled += 1
                continue
            ann = obj.get(annotator_column or "annotator")
            ann = None if ann is None else str(ann)
            out.add(i, text, ann, None, _key(i, text, ann))
        return out
    return label_studio_annotations(tasks, str(path), id_kind)
