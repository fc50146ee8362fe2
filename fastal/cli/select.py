"""``fastal select POOL``: a batch by any strategy, stateless (positions in, rows out);
``fastal select DIR``: the next round of a project (:mod:`fastal.cli.project`)."""

from __future__ import annotations

import argparse
import sys
import time

from .._errors import ArgumentError, FileError
from . import project as _project
from ._common import add_cluster_options, check_out, cluster, write_selection


def add_parser(sub):
    select = sub.add_parser(
        "select", help="pick a batch by any strategy (k-center, BADGE, hybrids, ...)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Pick k rows of POOL (Parquet / Arrow IPC file or directory) by a selection "
            "strategy. Diversity strategies read the embeddings column (--column); hybrids "
            "also read class probabilities (--probs-column). `fastal strategies` lists them.\n\n"
            "With a project directory DIR (made by `fastal init`) instead of POOL, select the "
            "next round: the ids already labeled, pending or skipped are excluded, the model's "
            "outputs for this round (--outputs, joined by id, or --head) are scored, the batch "
            "is recorded in DIR's ledger in one transaction and written to "
            "DIR/rounds/round-NNNN/ as batch.parquet, batch.csv and tasks.json (Label Studio)."),
        epilog="examples:\n  fastal select pool.parquet --strategy uncertain_kcenter --k 100 "
               "--column emb --probs-column probs --labeled labeled.txt --out batch.parquet\n"
               "  fastal select run1 --k 1000 --outputs preds/round3.parquet\n"
               "  fastal select run1 --k 1000 --outputs preds/round3.parquet --dry-run")
    select.add_argument("pool", metavar="POOL|DIR")
    select.add_argument("--strategy", default=None, help="strategy name (default: auto)")
    select.add_argument("--k", type=int, required=True, help="batch size")
    select.add_argument("--column", help="embeddings column (probabilities for uncertainty "
                                         "strategies); default: the only list column")
    select.add_argument("--probs-column", help="class probabilities column, for hybrids")
    select.add_argument("--from-logits", action="store_true", help="the probabilities are logits")
    select.add_argument("--labeled", help="text file of labeled row positions, one per line")
    select.add_argument("--seed", type=int, default=None,
                        help="random seed (default 0; in a project: mixed from the project's "
                             "seed and the round number)")
    select.add_argument("--out", default="-", help="as for `fastal score`")
    _project.add_select_arguments(select)
    add_cluster_options(select)
    return select


def run(args) -> int:
    from ..project import is_project

    if is_project(args.pool):
        if args.scheduler is not None or args.local_workers is not None:
            raise ArgumentError(f"--scheduler/--local-workers apply to `fastal select POOL` "
                                f"for now; {args.pool} is a project directory, whose rounds "
                                f"run on this machine")
        return _project.run_select(args)
    return run_stateless(args)


def run_stateless(args) -> int:
    import numpy as np

    from ..io import as_source
    from ..select import select

    given = [name for name in _project.PROJECT_SELECT_ONLY
             if getattr(args, name) not in (None, False, 30.0)]
    if given:
        flags = ", ".join("--" + g.replace("_", "-") for g in given)
        raise ArgumentError(f"{flags} apply to a project directory (`fastal init`); "
                            f"{args.pool} is a pool file")
    check_out(args.out)
    distributed = args.scheduler is not None or args.local_workers is not None
    probs = None
    if args.probs_column:  # on a cluster the workers read the column themselves
        probs = args.probs_column if distributed \
            else as_source(args.pool, column=args.probs_column).read_all()
    labeled = None
    if args.labeled:
        try:
            labeled = np.loadtxt(args.labeled, dtype=np.int64, ndmin=1)
        except (OSError, ValueError) as exc:
            raise FileError(f"--labeled must be a text file of row positions, one per line: {exc}")
    with cluster(args) as client:
        t0 = time.perf_counter()
        selection = select(args.pool, args.k, args.strategy, probs=probs, labeled=labeled,
                           seed=0 if args.seed is None else args.seed,
                           from_logits=args.from_logits, column=args.column, client=client)
    write_selection(selection, args.out)
    print(f"fastal: picked {len(selection)} of {selection.n_pool:,} rows by "
          f"{selection.method} in {time.perf_counter() - t0:.2f} s"
          + ("" if args.out == "-" else f"; wrote {args.out}"), file=sys.stderr)
    return 0
