"""fastal.project: init checks, rounds equal fastal.select, exclusion, requeue, labels,
conflicts and policies, outputs joined by id, bad ledgers, locks, batch files, estimates."""

import json
import os
import shutil
import sqlite3
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastal
from fastal import ArgumentError, DataError, FileError, LedgerError
from fastal.project import FastalWarning, Project
from fastal.project.project import _round_seed
from project_helpers import list_column, make_pool, write_labels, write_outputs


@pytest.fixture
def pool(tmp_path):
    path = tmp_path / "pool.parquet"
    ids, emb, probs = make_pool(path)
    return path, ids, emb, probs


def new_project(tmp_path, pool_path, name="proj", **kw):
    kw.setdefault("embedding_column", "emb")
    kw.setdefault("probs_column", "probs")
    return Project.init(tmp_path / name, pool_path, "id", **kw)


# -- init ------------------------------------------------------------------------------
@pytest.mark.parametrize("ids, message", [
    (["a", "b", None, "d"], "1 null id(s), first at row 2"),
    (["a", "b", "a", "d"], "1 duplicated id(s) (e.g. 'a')"),
    ([1, 2, 3, 3], "1 duplicated id(s) (e.g. 3)"),
])
def test_init_refuses_null_and_duplicated_ids(tmp_path, ids, message):
    path = tmp_path / "pool.parquet"
    pq.write_table(pa.table({"id": ids, "probs": list_column(np.full((4, 2), 0.5, np.float32))}), path)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Project.init(tmp_path / "p", path, "id", probs_column="probs")
    assert not (tmp_path / "p" / "ledger.sqlite").exists()


@pytest.mark.parametrize("kwargs, error, message", [
    ({"id_column": "nope"}, DataError, "no id column 'nope'"),
    ({"id_column": "emb"}, DataError, "must hold integers or strings"),
    ({"embedding_column": "nope"}, fastal.FastalError, "column 'nope' not found"),
    ({"strategy": "bogus"}, ArgumentError, "--strategy must be one of"),
    ({"strategy": "kcenter", "embedding_column": None}, ArgumentError, "reads embeddings"),
    ({"options": {"beta": 3}}, ArgumentError, "does not take option"),
    ({"classes": ["a", "b"]}, ArgumentError, "names 2 classes but column 'probs' has 3"),
    ({"data_columns": ["nope"]}, DataError, "--data-column 'nope' not found"),
])
def test_init_names_bad_arguments(tmp_path, pool, kwargs, error, message):
    args = {"id_column": "id", "embedding_column": "emb", "probs_column": "probs", **kwargs}
    id_column = args.pop("id_column")
    with pytest.raises(error, match=message):
        Project.init(tmp_path / "p", pool[0], id_column, **args)


def test_init_refuses_existing_projects_and_missing_pools(tmp_path, pool):
    new_project(tmp_path, pool[0]).close()
    with pytest.raises(ArgumentError, match="already a fastal project"):
        new_project(tmp_path, pool[0])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(ArgumentError, match="must be new or empty"):
        new_project(tmp_path, pool[0], name="full")
    with pytest.raises(FileError, match="does not exist"):
        new_project(tmp_path, tmp_path / "missing.parquet", name="other")


def test_pool_files_are_read_in_the_order_of_fastal_io(tmp_path):
    from fastal.io import as_source
    from fastal.project._pool import read_ids

    folder = tmp_path / "dir"
    (folder / "b").mkdir(parents=True)
    (folder / "_skip").mkdir()
    rows = 0
    for name in ["b/2.parquet", "a.parquet", "b/10.parquet", "_skip/x.parquet", ".hidden.parquet"]:
        ids, emb, _ = make_pool(tmp_path / "tmp.parquet", n=50, seed=rows)
        table = pq.read_table(tmp_path / "tmp.parquet")
        table = table.set_column(0, "id", pa.array([f"{name}:{i}" for i in range(50)]))
        pq.write_table(table, folder / name)
        rows += 50
    ours = read_ids(folder, "id").to_pylist()
    theirs = np.concatenate([c.ids for c in as_source(folder, column="emb", id_column="id").chunks()])
    assert ours == list(theirs) and len(ours) == 150


# -- rounds ----------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["margin", "entropy", "uncertain_kcenter", "kcenter", "random"])
def test_rounds_equal_fastal_select_with_the_excluded_rows_as_labeled(tmp_path, pool, strategy):
    path, ids, emb, probs = pool
    project = new_project(tmp_path, path, strategy=strategy)
    excluded = np.zeros(len(ids), dtype=bool)
    for r in (1, 2, 3):
        result = project.select(40, chunk_rows=300, new_round=True)
        want = fastal.select(emb if strategy in ("uncertain_kcenter", "kcenter", "random") else probs,
                             40, strategy, probs=probs if strategy == "uncertain_kcenter" else None,
                             labeled=np.flatnonzero(excluded), seed=_round_seed(0, r))
        assert result.round == r
        assert result.ids == [ids[i] for i in want.indices]
        np.testing.assert_allclose(result.scores, want.scores, rtol=1e-6)
        excluded[want.indices] = True
        if r == 1:  # label half of round 1: still excluded, now as labeled
            write_labels(tmp_path / "l.csv", result.ids[:20], ["a"] * 20)
            project.label(tmp_path / "l.csv")


def test_outputs_are_joined_by_id_in_any_order(tmp_path, pool):
    path, ids, emb, probs = pool
    outputs = np.random.default_rng(5).dirichlet(np.ones(3), len(ids)).astype(np.float32)
    write_outputs(tmp_path / "out.parquet", ids, outputs, seed=1)
    a = new_project(tmp_path, path, name="a").select(30, outputs=tmp_path / "out.parquet")
    want = fastal.select(outputs, 30, "margin", seed=_round_seed(0, 1))
    assert a.ids == [ids[i] for i in want.indices]
    # The predicted class and its probability in the batch files come from the outputs.
    table = pq.read_table(a.files[0])
    top = outputs[want.indices].argmax(axis=1)
    assert table["predicted"].to_pylist() == [str(t) for t in top]
    np.testing.assert_allclose(table["confidence"].to_numpy(), outputs[want.indices].max(axis=1), rtol=1e-6)


def test_logits_and_a_linear_head_score_the_embeddings(tmp_path, pool):
    path, ids, emb, probs = pool
    rng = np.random.default_rng(3)
    W, b = rng.standard_normal((8, 3)), rng.standard_normal(3)
    np.savez(tmp_path / "head.npz", W=W, b=b)
    logits = (emb @ W.astype(np.float32) + b.astype(np.float32)).astype(np.float32)
    project = new_project(tmp_path, path)
    by_head = project.select(25, head=tmp_path / "head.npz")
    want = fastal.select(logits, 25, "margin", from_logits=True, seed=_round_seed(0, 1))
    assert by_head.ids == [ids[i] for i in want.indices]
    write_outputs(tmp_path / "logits.parquet", ids, logits, column="logits")
    other = new_project(tmp_path, path, name="other")
    by_logits = other.select(25, outputs=tmp_path / "logits.parquet", from_logits=True)
    assert by_logits.ids == by_head.ids


@pytest.mark.parametrize("change, message", [
    ("drop", "miss 3 of the pool's 2000 ids"),
    ("unknown", "carry 1 id(s) that are not in the pool (e.g. 'stranger')"),
    ("repeat", "repeat 1 id(s)"),
    ("int", "holds integers but the pool's ids are strings"),
])
def test_outputs_that_do_not_match_the_pool_are_refused(tmp_path, pool, change, message):
    path, ids, emb, probs = pool
    out_ids, out_probs = list(ids), probs
    if change == "drop":
        out_ids, out_probs = out_ids[3:], probs[3:]
    elif change == "unknown":
        out_ids[7] = "stranger"
    elif change == "repeat":
        out_ids[7] = out_ids[8]
    elif change == "int":
        out_ids = list(range(len(ids)))
    write_outputs(tmp_path / "out.parquet", out_ids, out_probs)
    project = new_project(tmp_path, path)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        project.select(10, outputs=tmp_path / "out.parquet")
    assert project.status()["rounds"] == []


def test_stale_outputs_are_warned_about(tmp_path, pool):
    path, ids, emb, probs = pool
    write_outputs(tmp_path / "out.parquet", ids, probs)
    os.utime(tmp_path / "out.parquet", (1_000_000_000, 1_000_000_000))
    project = new_project(tmp_path, path)
    first = project.select(5, outputs=tmp_path / "out.parquet")
    project.label(write_labels(tmp_path / "l.csv", first.ids, ["a"] * 5))
    with pytest.warns(FastalWarning, match="older than the last labels"):
        project.select(5, outputs=tmp_path / "out.parquet")
    os.utime(tmp_path / "out.parquet")  # retrained: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", FastalWarning)
        project.select(5, outputs=tmp_path / "out.parquet")


def test_pending_and_labeled_ids_are_never_selected_again_until_requeued(tmp_path, pool):
    path, ids, *_ = pool
    project = new_project(tmp_path, path, strategy="random")
    r1 = project.select(500)
    project.label(write_labels(tmp_path / "l.csv", r1.ids[:100], ["a"] * 100))
    r2 = project.select(500)
    assert not set(r1.ids) & set(r2.ids)
    assert project.select(500).rerun and project.status()["pending"] == 900
    with pytest.raises(ArgumentError, match="larger than the unlabeled pool: 1,000 of 2,000"):
        project.select(1001)
    project.requeue(round_number=1)          # the 400 still pending go back to the pool
    r3 = project.select(1400)
    assert set(r3.ids) == set(ids) - set(r2.ids) - set(r1.ids[:100])
    assert project.requeue(ids=r1.ids[:3]) == {"requeued": 3, "not_requeued": 0}
    assert set(project.select(3).ids) == set(r1.ids[:3])   # labeled, requeued: selectable
    with pytest.raises(DataError, match="never selected or labeled"):
        project.requeue(ids=["row-99999"])
    with pytest.raises(ArgumentError, match="--round 9 does not exist"):
        project.requeue(round_number=9)


def test_the_same_inputs_and_seed_give_the_same_batch(tmp_path, pool):
    path, *_ = pool
    a = new_project(tmp_path, path, name="a", strategy="uncertain_kcenter", seed=7)
    b = new_project(tmp_path, path, name="b", strategy="uncertain_kcenter", seed=7)
    c = new_project(tmp_path, path, name="c", strategy="uncertain_kcenter", seed=8)
    ra, rb = a.select(30), b.select(30)
    assert ra.ids == rb.ids
    again = a.select(30)        # nothing changed since: the same round, not a second one
    assert again.rerun and again.round == 1 and again.ids == ra.ids
    assert a.select(30, seed=3).round == 2          # other inputs: a new round
    assert a.select(30, seed=3, new_round=True).round == 3
    assert c.select(30, strategy="random").ids != b.select(30, strategy="random").ids


# -- labels ----------------------------------------------------------------------------
def test_reimport_is_idempotent_and_conflicts_are_recorded_not_overwritten(tmp_path, pool):
    path, ids, *_ = pool
    project = new_project(tmp_path, path)
    batch = project.select(6).ids
    first = project.label(write_labels(tmp_path / "a.csv", batch[:4], ["a", "b", "c", "a"], ["ann"] * 4))
    assert (first.added, first.duplicates, first.conflicts) == (4, 0, [])
    again = project.label(tmp_path / "a.csv")
    assert (again.added, again.duplicates, again.already_imported) == (0, 4, True)
    # Another annotator disagrees on one id and agrees on another.
    second = project.label(write_labels(tmp_path / "b.csv", batch[:2], ["c", "b"], ["bob"] * 2))
    assert second.added == 2
    assert second.conflicts == [{"id": batch[0], "label": "c", "previous": ["a"]}]
    assert project.label(tmp_path / "b.csv").added == 0
    labels = project.ledger.query("SELECT id, label, annotator FROM labels ORDER BY label_id")
    assert labels[0] == (batch[0], "a", "ann") and (batch[0], "c", "bob") in labels
    assert project.training_labels("latest")[0][batch[0]] == "c"
    assert project.training_labels("first")[0][batch[0]] == "a"
    chosen, ties = project.training_labels("vote")
    assert batch[0] in ties and chosen[batch[1]] == "b"
    project.label(write_labels(tmp_path / "c.csv", [batch[0]], ["c"], ["carol"]), policy="vote")
    assert project.training_labels()[0][batch[0]] == "c"          # 2 votes to 1
    status = project.status()
    assert status["conflicts"]["count"] == 2 and status["policy"] == "vote"
    assert status["labeled"] == 4 and status["pending"] == 2
    assert project.ledger.query("SELECT count(*) FROM imports")[0][0] == 5


def test_label_formats_and_label_studio_exports(tmp_path, pool):
    path, ids, *_ = pool
    project = new_project(tmp_path, path, classes=["a", "b", "c"])
    batch = project.select(6).ids
    (tmp_path / "l.jsonl").write_text("\n".join(json.dumps({"id": i, "label": "a"}) for i in batch[:2]))
    pq.write_table(pa.table({"id": batch[2:3], "label": ["b"]}), tmp_path / "l.parquet")
    export = [
        {"id": 1, "data": {"fastal_id": batch[3], "text": "x"}, "annotations": [
            {"id": 11, "completed_by": 1, "updated_at": "t1", "was_cancelled": False,
             "result": [{"from_name": "label", "to_name": "text", "type": "choices",
                         "value": {"choices": ["c"]}}]}]},
        {"id": 2, "data": {"fastal_id": batch[4]}, "annotations": [
            {"id": 12, "completed_by": 1, "updated_at": "t2", "was_cancelled": True, "result": []}]},
        {"id": 3, "data": {"fastal_id": batch[5]}, "annotations": []},
        {"id": 4, "data": {"text": "a task someone else made"}, "annotations": []},
    ]
    (tmp_path / "export.json").write_text(json.dumps(export))
    assert project.label(tmp_path / "l.jsonl").added == 2
    assert project.label(tmp_path / "l.parquet").added == 1
    result = project.label(tmp_path / "export.json")
    assert (result.added, result.skipped, result.unlabeled, result.foreign) == (1, 1, 1, 1)
    assert project.label(tmp_path / "export.json").added == 0
    states = dict(project.ledger.query("SELECT id, status FROM selections"))
    assert [states[i] for i in batch] == ["labeled"] * 4 + ["skipped", "pending"]
    with pytest.raises(DataError, match="not among the project's classes"):
        project.label(write_labels(tmp_path / "bad.csv", batch[:1], ["zebra"]))
    with pytest.raises(DataError, match=r"not in the pool \(e.g. 'nobody'\)"):
        project.label(write_labels(tmp_path / "bad2.csv", ["nobody", batch[0]], ["a", "a"]))
    with pytest.raises(DataError, match=r"no column 'nope' \(--id-column\)"):
        project.label(tmp_path / "l.parquet", label_column="label", id_column="nope")
    assert project.ledger.query("SELECT count(*) FROM labels")[0][0] == 4


def test_labels_for_ids_outside_rounds_and_integer_ids(tmp_path):
    ids, *_ = make_pool(tmp_path / "pool.parquet", n=300, int_ids=True)
    project = Project.init(tmp_path / "p", tmp_path / "pool.parquet", "id", probs_column="probs")
    seed_labels = project.label(write_labels(tmp_path / "seed.csv", ids[:10], [0, 1] * 5))
    assert seed_labels.added == 10
    batch = project.select(50)
    assert not set(batch.ids) & set(ids[:10]) and all(isinstance(i, int) for i in batch.ids)
    out = project.export(tmp_path / "train.parquet", columns=["probs"])
    table = pq.read_table(tmp_path / "train.parquet")
    assert out["rows"] == 10 and table["id"].to_pylist() == ids[:10]
    assert table["label"].type == pa.int64() and table["label"].to_pylist() == [0, 1] * 5
    assert len(table["probs"][0]) == 3


# -- the ledger ------------------------------------------------------------------------
def _break(path, how):
    if how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "not sqlite":
        path.write_text("id,label\n1,a\n")
    elif how == "foreign sqlite":
        path.unlink()
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
        conn.close()
    elif how == "newer schema":
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA user_version=99")
        conn.close()


@pytest.mark.parametrize("how, message", [
    ("truncated", "is truncated"),
    ("empty", "is empty"),
    ("not sqlite", "not a SQLite database"),
    ("foreign sqlite", "not a fastal ledger"),
    ("newer schema", "newer than this fastal reads"),
    ("another project", "belongs to another project"),
])
def test_bad_ledgers_are_named_and_refused_never_repaired(tmp_path, pool, how, message):
    path, *_ = pool
    project = new_project(tmp_path, path)
    for _ in range(3):
        project.select(200, strategy="random")      # a ledger of several pages
    project.close()
    ledger = tmp_path / "proj" / "ledger.sqlite"
    conn = sqlite3.connect(ledger)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    if how == "another project":
        other = new_project(tmp_path, path, name="other")
        other.close()
        shutil.copy(tmp_path / "other" / "ledger.sqlite", ledger)
    else:
        _break(ledger, how)
    before = ledger.read_bytes()
    with pytest.raises(LedgerError, match=message):
        Project(tmp_path / "proj")
    assert ledger.read_bytes() == before


def test_a_second_writer_waits_then_fails_with_a_lock_message(tmp_path, pool):
    path, ids, *_ = pool
    project = new_project(tmp_path, path)
    batch = project.select(5).ids
    write_labels(tmp_path / "l.csv", batch, ["a"] * 5)
    holder = sqlite3.connect(tmp_path / "proj" / "ledger.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    other = Project(tmp_path / "proj", lock_timeout=0.2)
    with pytest.raises(LedgerError, match="locked by another fastal command"):
        other.label(tmp_path / "l.csv")
    holder.execute("ROLLBACK")
    assert other.label(tmp_path / "l.csv").added == 5
    # The ledger is in WAL mode with synchronous=FULL.
    assert holder.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert other.ledger.conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert holder.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# -- files, status, plot, estimates ----------------------------------------------------
def test_batch_files_and_their_rewrite_after_a_crash(tmp_path, pool):
    path, ids, emb, probs = pool
    project = new_project(tmp_path, path, data_columns=["text"], classes=["x", "y", "z"])
    result = project.select(12)
    parquet, csv, tasks = result.files
    table = pq.read_table(parquet)
    assert table.column_names[:4] == ["id", "rank", "score", "strategy"]
    assert table["id"].to_pylist() == result.ids and table["rank"].to_pylist() == list(range(12))
    assert table["text"][0].as_py() == f"text of row {ids.index(result.ids[0])}"
    import pyarrow.csv as pacsv
    assert "label" in pacsv.read_csv(csv).column_names
    task_list = json.loads(open(tasks).read())
    assert len(task_list) == 12
    first = task_list[0]
    assert first["data"]["fastal_id"] == result.ids[0] and "text" in first["data"]
    prediction = first["predictions"][0]
    assert prediction["score"] == pytest.approx(result.scores[0])
    assert prediction["result"][0]["value"]["choices"][0] in ("x", "y", "z")
    assert prediction["result"][0]["from_name"] == "label"
    assert prediction["result"][0]["to_name"] == "text"
    before = {p: open(p, "rb").read() for p in result.files}
    for p in result.files:
        os.unlink(p)
    assert project.ensure_round_files() == [1]
    assert {p: open(p, "rb").read() for p in result.files} == before


def test_status_and_plot(tmp_path, pool):
    path, ids, *_ = pool
    project = new_project(tmp_path, path, classes=["a", "b", "c"])
    for r in range(2):
        batch = project.select(20)
        project.label(write_labels(tmp_path / f"l{r}.csv", batch.ids[:15], ["a", "b", "c"] * 5))
    status = project.status()
    assert (status["labeled"], status["pending"], status["unlabeled"]) == (30, 10, 1960)
    assert status["per_class"] == {"a": 10, "b": 10, "c": 10}
    assert [r["labeled"] for r in status["rounds"]] == [15, 15]
    assert {s["signal"] for s in status["stopping_signals"]} == {"batch uncertainty", "model agreement"}
    out = project.plot(tmp_path / "p.png")
    assert open(out, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_dry_run_and_max_memory(tmp_path, pool):
    path, *_ = pool
    project = new_project(tmp_path, path)
    est = project.select(10, dry_run=True)
    assert est.dry_run and est.estimate["bytes"] > 0 and project.status()["rounds"] == []
    with pytest.raises(ArgumentError, match="more than --max-memory"):
        project.select(10, max_memory="1M")
    with pytest.raises(ArgumentError, match="--max-memory must be a size"):
        project.select(10, max_memory="lots")
    assert project.select(10, max_memory="64G").round == 1


def test_labels_arriving_during_a_select_do_not_void_it_unless_they_hit_the_batch(tmp_path, pool, monkeypatch):
    from fastal.project import _select

    path, ids, *_ = pool
    project = new_project(tmp_path, path, strategy="random")
    other = Project(tmp_path / "proj")
    run = _select.run
    hit = {"ids": None}

    def run_while_labels_arrive(inputs, excluded, positions, progress):
        batch = run(inputs, excluded, positions, progress)
        picked = [ids[i] for i in batch.positions]
        chosen = picked[:1] if hit["ids"] == "batch" else \
            [i for i in ids if i not in picked and i not in project._excluded_ids()][:1]
        other.label(write_labels(tmp_path / "l.csv", chosen, ["a"]))
        return batch

    monkeypatch.setattr(_select, "run", run_while_labels_arrive)
    assert project.select(10).round == 1                   # labels elsewhere: the batch stands
    hit["ids"] = "batch"
    with pytest.raises(LedgerError, match="another fastal command selected or labeled"):
        project.select(10)
    assert [r["round"] for r in project.status()["rounds"]] == [1]
