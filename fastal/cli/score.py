"""``fastal score``: the k most informative rows of a pool file by one scoring method."""

from __future__ import annotations

import argparse
import sys
import time

from ._common import (METHOD_HELP, add_cluster_options, check_out, cluster, column_arg,
                      write_selection)


def add_parser(sub):
    score = sub.add_parser(
        "score",
        help="pick the k most informative rows of a pool file",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Score every row of POOL (a Parquet file, an Arrow IPC/Feather file, or a directory "
            "of them) and write the k most informative rows, most informative first.\n"
            "The pool holds one row per example: a list<float> column of class probabilities "
            "(or logits with --from-logits), or one float column per class (--column a,b,c)."
        ),
        epilog=METHOD_HELP + "\nexample:\n  fastal score pool.parquet --method margin --k 1000 "
                             "--id-column id --out picks.parquet",
    )
    score.add_argument("pool", metavar="POOL", help="Parquet / Arrow IPC file, or a directory of them")
    score.add_argument("--method", default="margin",
                       help="a method below (default margin)")
    score.add_argument("--k", type=int, required=True, help="number of rows to pick")
    score.add_argument("--out", default="-",
                       help="output file: .parquet, .arrow/.feather or .csv; '-' prints CSV "
                            "to stdout (default)")
    score.add_argument("--from-logits", action="store_true", help="the column holds logits")
    score.add_argument("--column", help="the list column, or comma-separated per-class columns "
                                        "(default: the only list column)")
    score.add_argument("--id-column", help="integer or string column naming each row")
    score.add_argument("--chunk-rows", type=int, help="rows per chunk (default: ~4 MiB of input)")
    score.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    add_cluster_options(score)
    return score


def run(args) -> int:
    from ..scoring import top_k

    check_out(args.out)
    with cluster(args) as client:
        t0 = time.perf_counter()
        selection = top_k(args.pool, args.k, args.method, from_logits=args.from_logits,
                          column=column_arg(args.column), id_column=args.id_column,
                          chunk_rows=args.chunk_rows, progress=not args.quiet, client=client)
        seconds = time.perf_counter() - t0
    write_selection(selection, args.out)
    if not args.quiet:
        print(f"fastal: picked {len(selection)} of {selection.n_pool:,} rows by {args.method} "
              f"in {seconds:.2f} s ({selection.n_pool / seconds:,.0f} rows/s)"
              + ("" if args.out == "-" else f"; wrote {args.out}"), file=sys.stderr)
    return 0
