"""``fastal convert``: rewrite a Parquet pool as one Arrow IPC file (scanned memory-mapped)."""

from __future__ import annotations

import argparse
import sys
import time

from ._common import column_arg


def add_parser(sub):
    convert = sub.add_parser(
        "convert",
        help="rewrite a Parquet pool as an Arrow IPC file for fast repeated scans",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Rewrite POOL (a Parquet file, or a directory of Parquet / Arrow files) as one "
            "uncompressed Arrow IPC file OUT, row group by row group in bounded memory.\n"
            "Rows keep their order, so positions and ids picked from OUT are those of POOL. "
            "Later rounds read OUT memory-mapped, without decoding: several times the rate "
            "of Parquet (see bench/README.md).\n"
            "OUT is written under a temporary name beside it and renamed when complete, so "
            "an interrupted run never leaves a partial OUT."
        ),
        epilog="example:\n  fastal convert pool.parquet pool.arrow\n"
               "  fastal score pool.arrow --method margin --k 1000 --id-column id",
    )
    convert.add_argument("pool", metavar="POOL",
                         help="Parquet file, or a directory of Parquet / Arrow IPC files")
    convert.add_argument("out", metavar="OUT.arrow",
                         help="the Arrow IPC file to write (.arrow, .feather or .ipc)")
    convert.add_argument("--columns", help="comma-separated columns to keep (default: all)")
    convert.add_argument("--force", action="store_true", help="replace OUT if it exists")
    convert.add_argument("--quiet", action="store_true", help="no summary")
    return convert


def run(args) -> int:
    from ..io import convert

    columns = column_arg(args.columns)
    if isinstance(columns, str):
        columns = [columns]
    t0 = time.perf_counter()
    done = convert(args.pool, args.out, columns=columns, force=args.force)
    seconds = time.perf_counter() - t0
    if not args.quiet:
        n_columns = len(done.schema)
        print(f"fastal: wrote {done.n_rows:,} rows x {n_columns} column"
              f"{'s' if n_columns != 1 else ''} from "
              f"{done.n_files} file{'s' if done.n_files != 1 else ''} to {done.path} in "
              f"{seconds:.2f} s", file=sys.stderr)
    return 0
