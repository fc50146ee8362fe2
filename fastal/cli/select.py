"""``fastal select POOL``: a batch by any strategy, stateless (positions in, rows out)."""

from __future__ import annotations

import argparse
import sys
import time

from .._errors import FastalError
from ._common import check_out, write_selection


def add_parser(sub):
    select = sub.add_parser(
        "select", help="pick a batch by any strategy (k-center, BADGE, hybrids, ...)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Pick k rows of POOL (Parquet / Arrow IPC file or directory) by a selection "
            "strategy. Diversity strategies read the embeddings column (--column); hybrids "
            "also read class probabilities (--probs-column). `fastal strategies` lists them."),
        epilog="example:\n  fastal select pool.parquet --strategy uncertain_kcenter --k 100 "
               "--column emb --probs-column probs --labeled labeled.txt --out batch.parquet")
    select.add_argument("pool", metavar="POOL")
    select.add_argument("--strategy", default=None, help="strategy name (default: auto)")
    select.add_argument("--k", type=int, required=True, help="batch size")
    select.add_argument("--column", help="embeddings column (probabilities for uncertainty "
                                         "strategies); default: the only list column")
    select.add_argument("--probs-column", help="class probabilities column, for hybrids")
    select.add_argument("--from-logits", action="store_true", help="the probabilities are logits")
    select.add_argument("--labeled", help="text file of labeled row positions, one per line")
    select.add_argument("--seed", type=int, default=0)
    select.add_argument("--out", default="-", help="as for `fastal score`")
    return select


def run(args) -> int:
    import numpy as np

    from ..io import as_source
    from ..select import select

    check_out(args.out)
    probs = None
    if args.probs_column:
        probs = as_source(args.pool, column=args.probs_column).read_all()
    labeled = None
    if args.labeled:
        try:
            labeled = np.loadtxt(args.labeled, dtype=np.int64, ndmin=1)
        except (OSError, ValueError) as exc:
            raise FastalError(f"--labeled must be a text file of row positions, one per line: {exc}")
    t0 = time.perf_counter()
    selection = select(args.pool, args.k, args.strategy, probs=probs, labeled=labeled,
                       seed=args.seed, from_logits=args.from_logits, column=args.column)
    write_selection(selection, args.out)
    print(f"fastal: picked {len(selection)} of {selection.n_pool:,} rows by "
          f"{selection.method} in {time.perf_counter() - t0:.2f} s"
          + ("" if args.out == "-" else f"; wrote {args.out}"), file=sys.stderr)
    return 0
