"""Annotation rounds: ``fastal init / label / requeue / status / plot / export / push / pull``
(and the project form of ``fastal select DIR``, in :mod:`fastal.cli.select`).

Thin: each runner parses its arguments, calls one method of :class:`fastal.project.Project`
and prints what happened. Messages go to stderr, requested data (``status --json``) to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings

from .._errors import ArgumentError, FileError

_FORMATTER = argparse.RawDescriptionHelpFormatter


def say(args, text: str) -> None:
    """An informational line on stderr (silenced by --quiet)."""
    if not getattr(args, "quiet", False):
        print(f"fastal: {text}", file=sys.stderr)


@contextlib.contextmanager
def warnings_as_lines():
    """Show fastal's warnings as one ``fastal: warning: ...`` line each."""
    from ..project import FastalWarning

    def show(message, category, *rest, **kw):
        print(f"fastal: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("always", FastalWarning)
        old = warnings.showwarning
        warnings.showwarning = show
        try:
            yield
        finally:
            warnings.showwarning = old


def progress_for(args):
    from ..project.project import _no_progress, tqdm_progress

    return _no_progress if getattr(args, "quiet", False) else tqdm_progress


def add_common(p, *, write=True):
    p.add_argument("dir", metavar="DIR", help="the project directory")
    if write:
        p.add_argument("--lock-timeout", type=float, default=30.0, metavar="S",
                       help="seconds to wait for another fastal command holding the ledger "
                            "(default 30)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars or notes")


def open_project(args, *, readonly=False):
    from ..project import Project

    return Project(args.dir, lock_timeout=getattr(args, "lock_timeout", 30.0), readonly=readonly)


def _list_arg(text):
    return [t for t in text.split(",") if t] if text else []


def _options(pairs) -> dict | None:
    """``--option beta=20 --option metric=cosine`` -> {"beta": 20, "metric": "cosine"}."""
    if not pairs:
        return None
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ArgumentError(f"--option must be NAME=VALUE; got {pair!r}")
        name, value = pair.split("=", 1)
        try:
            out[name] = json.loads(value)
        except json.JSONDecodeError:
            out[name] = value
    return out


# -- init ------------------------------------------------------------------------------
def add_init(sub):
    p = sub.add_parser(
        "init", help="create a project directory for annotation rounds",
        formatter_class=_FORMATTER,
        description=(
            "Create DIR for one active-learning effort: the pool (a Parquet / Arrow IPC file "
            "or directory), its id column (ids are the rows' identity: missing, null or "
            "duplicated ids are refused), its embedding and/or probability/logit columns, "
            "the strategy and seed, and the label ledger (DIR/ledger.sqlite)."),
        epilog=("example:\n  fastal init run1 --pool pool.parquet --id-column id "
                "--embedding-column emb --probs-column probs \\\n"
                "      --strategy uncertain_kcenter --classes cat,dog,bird --data-column text"))
    p.add_argument("dir", metavar="DIR", help="new or empty directory")
    p.add_argument("--pool", required=True, help="Parquet / Arrow IPC file or directory")
    p.add_argument("--id-column", required=True, help="integer or string column of unique ids")
    p.add_argument("--embedding-column", help="list<float> column of embeddings (diversity "
                                              "strategies, --head)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--probs-column", help="list<float> column of class probabilities in the pool")
    g.add_argument("--logits-column", help="list<float> column of logits in the pool")
    p.add_argument("--strategy", help="default strategy (default: margin; `fastal strategies`)")
    p.add_argument("--option", action="append", metavar="NAME=VALUE",
                   help="strategy option, e.g. beta=20 (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="project seed (default 0); round r "
                   "uses a seed mixed from it and r")
    p.add_argument("--classes", help="class names in output-column order, comma-separated "
                                     "(labels outside them are refused)")
    p.add_argument("--data-column", action="append", default=[], metavar="COL",
                   help="pool column copied into batch files and Label Studio tasks (text, "
                        "image URL...); repeatable")
    p.add_argument("--ls-from-name", default="label",
                   help="Label Studio choices control name (default: label)")
    p.add_argument("--ls-to-name", help="Label Studio object name (default: the first "
                                        "--data-column, else 'text')")
    p.add_argument("--policy", default="latest", choices=("latest", "first", "vote"),
                   help="which label training gets when annotations disagree (default latest)")
    p.add_argument("--quiet", "-q", action="store_true")


def run_init(args) -> int:
    from ..project import Project

    with warnings_as_lines():
        project = Project.init(
            args.dir, args.pool, args.id_column, embedding_column=args.embedding_column,
            probs_column=args.probs_column, logits_column=args.logits_column,
            strategy=args.strategy, options=_options(args.option), seed=args.seed,
            classes=_list_arg(args.classes) or None, data_columns=args.data_column,
            ls_from_name=args.ls_from_name, ls_to_name=args.ls_to_name, policy=args.policy,
            progress=progress_for(args))
    cfg = project.config
    project.close()
    say(args, f"created project {args.dir}: pool {cfg['pool']} ({cfg['n_pool']:,} rows, ids "
              f"in {cfg['id_column']!r}), strategy {cfg['strategy']}, seed {cfg['seed']}")
    return 0


# -- select DIR (called from fastal.cli.select) -----------------------------------------
PROJECT_SELECT_ONLY = ("outputs", "outputs_column", "outputs_id_column", "head", "option",
                       "dry_run", "max_memory", "lock_timeout", "chunk_rows", "new_round")


def add_select_arguments(p):
    """The options of ``fastal select DIR`` (added to the one ``select`` parser)."""
    g = p.add_argument_group("project form (fastal select DIR)")
    g.add_argument("--outputs", help="this round's model outputs: Parquet/Arrow file or "
                                     "directory with the id column and a probabilities (or "
                                     "logits) list column, joined to the pool by id")
    g.add_argument("--outputs-column", help="the outputs' probabilities/logits column "
                                            "(default: the project's, or the only list column)")
    g.add_argument("--outputs-id-column", help="the outputs' id column (default: the pool's)")
    g.add_argument("--head", help="a linear head (.npz with W (d, C) and b (C,)) scoring the "
                                  "pool's embeddings, instead of --outputs")
    g.add_argument("--option", action="append", metavar="NAME=VALUE",
                   help="strategy option, e.g. beta=20 (repeatable)")
    g.add_argument("--dry-run", action="store_true",
                   help="print the memory and time this select needs, and stop")
    g.add_argument("--max-memory", metavar="SIZE",
                   help="refuse to run if the estimate exceeds SIZE (e.g. 8G, 500M)")
    g.add_argument("--new-round", action="store_true",
                   help="select another batch even if the last round was made with the same "
                        "inputs and nothing changed since (by default that round is returned)")
    g.add_argument("--chunk-rows", type=int, help="rows per streamed chunk (default ~4 MiB)")
    g.add_argument("--lock-timeout", type=float, default=30.0, metavar="S",
                   help="seconds to wait for another command holding the ledger")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress bars or notes")


def run_select(args) -> int:
    stateless = [name for name, default in (("column", None), ("probs_column", None),
                                            ("labeled", None), ("out", "-"))
                 if getattr(args, name) != default]
    if stateless:
        flags = ", ".join("--" + s.replace("_", "-") for s in stateless)
        raise ArgumentError(f"{flags} belong to the stateless form `fastal select POOL`; "
                            f"{args.pool} is a project directory, whose columns were set by "
                            f"`fastal init` (batch files go to {args.pool}/rounds/)")
    from ..project import Project

    with warnings_as_lines():
        with Project(args.pool, lock_timeout=args.lock_timeout) as project:
            result = project.select(
                args.k, strategy=args.strategy, options=_options(args.option),
                outputs=args.outputs, outputs_column=args.outputs_column,
                outputs_id_column=args.outputs_id_column,
                from_logits=True if args.from_logits else None, head=args.head,
                seed=args.seed, chunk_rows=args.chunk_rows, dry_run=args.dry_run,
                max_memory=args.max_memory, progress=progress_for(args),
                new_round=args.new_round)
    if result.dry_run:
        _print_estimate(result.estimate)
        return 0
    if result.rerun:
        say(args, f"round {result.round} was already selected with these inputs "
                  f"({len(result.ids)} ids, {result.strategy}); nothing new was picked (pass "
                  f"--new-round for another batch)")
    else:
        timing = ", ".join(f"{k} {v:.2f} s" for k, v in result.phases.items())
        say(args, f"round {result.round}: picked {len(result.ids)} ids by {result.strategy} "
                  f"({timing})")
    say(args, "wrote " + ", ".join(result.files))
    return 0


def _print_estimate(est):
    from ..project.project import _format_bytes

    print(f"estimated peak memory: {_format_bytes(est['bytes'])}")
    for name, value in est["parts"].items():
        print(f"  {name:<36} {_format_bytes(value)}")
    print(f"estimated time: {est['seconds']:.1f} s (rough; measured rates of a 2-core machine)")


# -- label -----------------------------------------------------------------------------
def add_label(sub):
    p = sub.add_parser(
        "label", help="import annotations into a project's ledger",
        formatter_class=_FORMATTER,
        description=(
            "Import FILE into DIR's ledger in one transaction: CSV, Parquet or JSON Lines "
            "with id and label columns (optionally annotator), or a Label Studio JSON export. "
            "Importing the same annotations twice changes nothing. A label that disagrees "
            "with an earlier one for the same id is kept and reported as a conflict; --policy "
            "says which label training gets (latest, first, or the majority vote)."),
        epilog="example:\n  fastal label run1 run1/rounds/round-0001/batch.csv\n"
               "  fastal label run1 export.json --policy vote")
    add_common(p)
    p.add_argument("file", metavar="FILE")
    p.add_argument("--format", choices=("csv", "parquet", "jsonl", "label-studio"),
                   help="default: from the suffix and content")
    p.add_argument("--id-column", help="default: the pool's id column name")
    p.add_argument("--label-column", default="label")
    p.add_argument("--annotator-column", help="default: 'annotator' when present")
    p.add_argument("--policy", choices=("latest", "first", "vote"),
                   help="set the project's label policy for training and export")


def run_label(args) -> int:
    with warnings_as_lines(), open_project(args) as project:
        result = project.label(args.file, fmt=args.format, id_column=args.id_column,
                               label_column=args.label_column,
                               annotator_column=args.annotator_column, policy=args.policy,
                               progress=progress_for(args))
    report_import(args, result)
    return 0


def report_import(args, result):
    parts = [f"{result.added} new label(s)", f"{result.duplicates} already in the ledger"]
    if result.skipped:
        parts.append(f"{result.skipped} skipped by annotators")
    if result.unlabeled:
        parts.append(f"{result.unlabeled} row(s) without a label ignored")
    if result.foreign:
        parts.append(f"{result.foreign} task(s) without data.fastal_id (not made by fastal) "
                     f"ignored")
    say(args, f"imported {result.rows} row(s) from {result.source}: " + ", ".join(parts))
    if result.already_imported and result.added == 0:
        say(args, "this file was imported before; nothing changed")
    if result.conflicts:
        shown = "; ".join(f"id {c['id']!r}: {c['label']!r} vs earlier "
                          f"{', '.join(repr(p) for p in c['previous'])}"
                          for c in result.conflicts[:5])
        more = "" if len(result.conflicts) <= 5 else f" (and {len(result.conflicts) - 5} more)"
        print(f"fastal: warning: {len(result.conflicts)} conflicting label(s) recorded, none "
              f"overwritten: {shown}{more}; `fastal status DIR` lists them, --policy decides",
              file=sys.stderr)


# -- requeue ---------------------------------------------------------------------------
def add_requeue(sub):
    p = sub.add_parser(
        "requeue", help="make selected ids selectable again",
        formatter_class=_FORMATTER,
        description=("A labeled, pending or skipped id is never selected again unless it is "
                     "requeued. --round R requeues R's pending and skipped ids (annotators did "
                     "not get to them); --ids FILE requeues the listed ids, labeled ones too "
                     "(e.g. to have a conflict labeled again). Labels are never deleted."),
        epilog="example:\n  fastal requeue run1 --round 3\n  fastal requeue run1 --ids redo.txt")
    add_common(p)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--round", type=int, dest="round_number")
    g.add_argument("--ids", help="text file of ids, one per line")


def run_requeue(args) -> int:
    with open_project(args) as project:
        ids = None
        if args.ids:
            ids = _read_id_lines(args.ids, project.config["id_type"])
        result = project.requeue(round_number=args.round_number, ids=ids)
    say(args, f"requeued {result['requeued']} id(s)"
        + (f"; {result['not_requeued']} were not pending, skipped or labeled"
           if result["not_requeued"] else ""))
    return 0


def _read_id_lines(path, kind):
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.strip() for line in f if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise FileError(f"cannot read --ids {path}: {exc}") from exc
    if kind == "int":
        try:
            return [int(x) for x in lines]
        except ValueError as exc:
            raise ArgumentError(f"--ids {path} must hold integer ids, one per line: {exc}") from exc
    return lines


# -- status ----------------------------------------------------------------------------
def add_status(sub):
    p = sub.add_parser("status", help="labels, pending ids, rounds, classes, conflicts",
                       formatter_class=_FORMATTER,
                       description="Summarise a project's ledger (read-only).",
                       epilog="example:\n  fastal status run1\n  fastal status run1 --json | jq .pending")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--json", action="store_true", help="machine-readable, on stdout")


def run_status(args) -> int:
    with open_project(args, readonly=True) as project:
        status = project.status()
    if args.json:
        try:
            print(json.dumps(status, indent=1, default=str))
        except BrokenPipeError:       # `fastal status DIR --json | head`
            sys.stdout = open(os.devnull, "w")
        return 0
    print(f"project {status['project']}: pool {status['pool']} ({status['n_pool']:,} ids), "
          f"strategy {status['strategy']}, label policy {status['policy']}")
    print(f"labeled {status['labeled']:,}  pending {status['pending']:,}  skipped "
          f"{status['skipped']:,}  requeued {status['requeued']:,}  unlabeled "
          f"{status['unlabeled']:,}  ({status['annotations']:,} annotations in "
          f"{status['imports']} import(s))")
    if status["rounds"]:
        print("round  strategy            k  labeled  pending  skipped  requeued  uncertainty  agreement")
        for r in status["rounds"]:
            unc = f"{r['mean_uncertainty']:.3f}" if "mean_uncertainty" in r else "-"
            agree = f"{r['model_agreement']:.0%}" if "model_agreement" in r else "-"
            print(f"{r['round']:>5}  {r['strategy']:<16} {r['k']:>4}  {r['labeled']:>7}  "
                  f"{r['pending']:>7}  {r['skipped']:>7}  {r['requeued']:>8}  {unc:>11}  {agree:>9}")
    if status["per_class"]:
        print("classes: " + ", ".join(f"{c} {n}" for c, n in status["per_class"].items()))
    c = status["conflicts"]
    if c["count"]:
        print(f"conflicts: {c['count']} on {c['ids']} id(s) (e.g. "
              f"{', '.join(repr(i) for i in c['examples'])}); policy {status['policy']} decides")
    if status["vote_ties"]:
        print(f"vote ties: {status['vote_ties']} id(s) left out of training until labeled again")
    for s in status["stopping_signals"]:
        print(f"signal: {s['text']}")
    return 0


# -- plot, export ----------------------------------------------------------------------
def add_plot(sub):
    p = sub.add_parser("plot", help="PNG of labels per round, class balance, batch scores",
                       formatter_class=_FORMATTER,
                       epilog="example:\n  fastal plot run1 --out run1.png")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--out", help="PNG path (default DIR/progress.png)")
    p.add_argument("--quiet", "-q", action="store_true")


def run_plot(args) -> int:
    with open_project(args, readonly=True) as project:
        out = project.plot(args.out or f"{args.dir}/progress.png")
    say(args, f"wrote {out}")
    return 0


def add_export(sub):
    p = sub.add_parser("export", help="the labeled set as Parquet or CSV, for training",
                       formatter_class=_FORMATTER,
                       description=("One row per labeled id: id, label (chosen by the "
                                    "policy), annotations, conflict, round; --columns adds "
                                    "pool columns such as the embeddings."),
                       epilog="example:\n  fastal export run1 --out train.parquet --columns emb")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--out", help="default DIR/labeled.parquet")
    p.add_argument("--policy", choices=("latest", "first", "vote"),
                   help="default: the project's policy")
    p.add_argument("--columns", help="pool columns to add, comma-separated")
    p.add_argument("--include-ties", action="store_true",
                   help="keep vote ties (label empty) instead of leaving them out")
    p.add_argument("--quiet", "-q", action="store_true")


def run_export(args) -> int:
    with open_project(args, readonly=True) as project:
        info = project.export(args.out or f"{args.dir}/labeled.parquet", policy=args.policy,
                              columns=_list_arg(args.columns), include_ties=args.include_ties)
    say(args, f"wrote {info['rows']:,} labeled ids to {info['path']} (policy {info['policy']})"
        + (f"; {info['ties_left_out']} vote ties left out" if info["ties_left_out"] else ""))
    return 0


# -- push, pull ------------------------------------------------------------------------
def _add_ls(p):
    p.add_argument("--label-studio", required=True, metavar="URL",
                   help="the Label Studio server, e.g. http://localhost:8080")
    p.add_argument("--project", required=True, type=int, metavar="ID",
                   help="the Label Studio project id")
    p.add_argument("--token-env", default="LABEL_STUDIO_API_KEY", metavar="NAME",
                   help="environment variable holding the access token: a personal access "
                        "token (refreshed into short-lived access tokens) or a legacy token "
                        "(default LABEL_STUDIO_API_KEY)")
    p.add_argument("--timeout", type=float, default=60.0, help="HTTP timeout in seconds")


def add_push(sub):
    p = sub.add_parser("push", help="send a round's pending ids to Label Studio as tasks",
                       formatter_class=_FORMATTER,
                       description=("Create one Label Studio task per pending id of the round "
                                    "(default: every round with pending ids), with the model's "
                                    "guess as a prediction scored by the selection score. Ids "
                                    "already in the Label Studio project are not sent again, "
                                    "so an interrupted push can simply be rerun."),
                       epilog="example:\n  export LABEL_STUDIO_API_KEY=...   # your access token\n"
                              "  fastal push run1 --label-studio http://localhost:8080 --project 3")
    add_common(p)
    _add_ls(p)
    p.add_argument("--round", type=int, dest="round_number")


def run_push(args) -> int:
    from ..project.labelstudio import push

    with open_project(args) as project:
        result = push(project, args.label_studio, args.project, token_env=args.token_env,
                      round_number=args.round_number, timeout=args.timeout)
    say(args, f"sent {result['sent']} task(s) to {args.label_studio} project {args.project}"
        + (f"; {result['already']} were there already" if result["already"] else ""))
    return 0


def add_pull(sub):
    p = sub.add_parser("pull", help="import finished Label Studio annotations",
                       formatter_class=_FORMATTER,
                       description=("Read the project's annotated tasks from Label Studio and "
                                    "import them like `fastal label` (idempotent; conflicts "
                                    "recorded; cancelled annotations mark the id skipped)."),
                       epilog="example:\n  fastal pull run1 --label-studio http://localhost:8080 --project 3")
    add_common(p)
    _add_ls(p)
    p.add_argument("--policy", choices=("latest", "first", "vote"))


def run_pull(args) -> int:
    from ..project.labelstudio import pull

    with warnings_as_lines(), open_project(args) as project:
        result = pull(project, args.label_studio, args.project, token_env=args.token_env,
                      timeout=args.timeout, policy=args.policy)
    report_import(args, result)
    return 0


def add_parsers(sub):
    add_init(sub)
    add_label(sub)
    add_requeue(sub)
    add_status(sub)
    add_plot(sub)
    add_export(sub)
    add_push(sub)
    add_pull(sub)


RUNNERS = {"init": run_init, "label": run_label, "requeue": run_requeue, "status": run_status,
           "plot": run_plot, "export": run_export, "push": run_push, "pull": run_pull}
