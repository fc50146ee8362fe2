"""The ``fastal`` command: a thin shell over the public functions (it never computes)."""

from __future__ import annotations

import argparse
import sys
import time

from . import __version__
from ._errors import FastalError

_METHOD_HELP = """\
uncertainty methods (higher score = more informative; p sorted so p(1) >= p(2)):
  entropy           -sum_j p_j log p_j (nats)
  least_confidence  1 - p(1)
  margin            1 - (p(1) - p(2))
  ratio             p(2) / p(1)

committee methods (one list column per member: --column m0,m1,...; q = mean of members):
  vote_entropy       entropy of the members' argmax votes
  consensus_entropy  H(q)                       (alias soft_vote_entropy)
  bald               H(q) - mean_m H(p_m)       (alias mutual_information)
  kl_max             max_m KL(p_m || q)
  variation_ratio    1 - (votes for the modal class) / M
  consensus_margin   1 - (q(1) - q(2))
  committee_std      std over members of regression predictions (one float column each)

expected model change:
  expected_gradient_length_bias  sum_y p_y ||p - e_y|| (gradient of the softmax bias)
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastal",
        description="fastal: decide which examples to label next.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_METHOD_HELP,
    )
    parser.add_argument("--version", action="version", version=f"fastal {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
        epilog=_METHOD_HELP + "\nexample:\n  fastal score pool.parquet --method margin --k 1000 "
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

    demo = sub.add_parser(
        "demo", help="scoring speed on a synthetic pool, then simulated labelling on real data",
        description="1) Write a synthetic pool (Arrow IPC, in a temporary directory), pick the top "
                    "rows with each uncertainty method, and print rows/s. 2) Simulate active "
                    "learning on real data (scikit-learn's digits; Fashion-MNIST too when cached) "
                    "with random, margin, k-center and uncertain k-center sampling; print how many "
                    "labels each needs to reach random sampling's accuracy and write the learning "
                    "curves (PNG, CSV) to --out-dir.")
    demo.add_argument("--rows", type=int, default=2_000_000, help="pool rows (default 2,000,000)")
    demo.add_argument("--classes", type=int, default=10, help="classes (default 10)")
    demo.add_argument("--k", type=int, default=5, help="rows to pick (default 5)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out-dir", default="fastal-demo", help="where the plots go (default ./fastal-demo)")
    demo.add_argument("--repeats", type=int, default=3, help="simulation repeats (default 3)")
    demo.add_argument("--no-simulation", action="store_true", help="only the scoring speed demo")
    demo.add_argument("--datasets", default="digits,fashion",
                      help="simulation datasets, comma-separated (default digits,fashion)")

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
    select.add_argument("--strategy", default=None, help="strategy name (default: margin)")
    select.add_argument("--k", type=int, required=True, help="batch size")
    select.add_argument("--column", help="embeddings column (probabilities for uncertainty "
                                         "strategies); default: the only list column")
    select.add_argument("--probs-column", help="class probabilities column, for hybrids")
    select.add_argument("--from-logits", action="store_true", help="the probabilities are logits")
    select.add_argument("--labeled", help="text file of labeled row positions, one per line")
    select.add_argument("--seed", type=int, default=0)
    select.add_argument("--out", default="-", help="as for `fastal score`")

    sub.add_parser("strategies", help="list the selection strategies")
    sub.add_parser("methods", help="list the scoring methods and their formulas")
    return parser


_OUT_SUFFIXES = (".parquet", ".pq", ".arrow", ".feather", ".ipc", ".csv")


def _check_out(out: str):
    if out != "-" and not out.lower().endswith(_OUT_SUFFIXES):
        raise FastalError(
            f"--out must end in .parquet, .arrow, .feather or .csv (or be '-'); got {out!r}")


def _write(selection, out: str):
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = selection.to_arrow()
    if out == "-":
        sink = pa.BufferOutputStream()
        pacsv.write_csv(table, sink)
        sys.stdout.write(sink.getvalue().to_pybytes().decode())
        return
    lower = out.lower()
    if lower.endswith((".parquet", ".pq")):
        pq.write_table(table, out)
    elif lower.endswith((".arrow", ".feather", ".ipc")):
        import pyarrow.feather as feather
        feather.write_feather(table, out)
    else:
        pacsv.write_csv(table, out)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "methods":
            print(_METHOD_HELP, end="")
            return 0
        if args.command == "strategies":
            from .select import strategies

            for name, text in strategies().items():
                print(f"{name:<18} {text}")
            return 0
        if args.command == "select":
            return _select(args)
        if args.command == "demo":
            from .demo import run, simulation

            run(n_rows=args.rows, n_classes=args.classes, k=args.k, seed=args.seed)
            if not args.no_simulation:
                simulation(args.out_dir, repeats=args.repeats, datasets=args.datasets.split(","))
            return 0
        from .scoring import top_k

        _check_out(args.out)
        column = args.column.split(",") if args.column and "," in args.column else args.column
        t0 = time.perf_counter()
        selection = top_k(args.pool, args.k, args.method, from_logits=args.from_logits,
                          column=column, id_column=args.id_column, chunk_rows=args.chunk_rows,
                          progress=not args.quiet)
        seconds = time.perf_counter() - t0
        _write(selection, args.out)
        if not args.quiet:
            print(f"fastal: picked {len(selection)} of {selection.n_pool:,} rows by {args.method} "
                  f"in {seconds:.2f} s ({selection.n_pool / seconds:,.0f} rows/s)"
                  + ("" if args.out == "-" else f"; wrote {args.out}"), file=sys.stderr)
        return 0
    except FastalError as exc:
        print(f"fastal: error: {exc}", file=sys.stderr)
        return 2


def _select(args) -> int:
    import numpy as np

    from .io import as_source
    from .select import select

    _check_out(args.out)
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
    _write(selection, args.out)
    print(f"fastal: picked {len(selection)} of {selection.n_pool:,} rows by "
          f"{selection.method} in {time.perf_counter() - t0:.2f} s"
          + ("" if args.out == "-" else f"; wrote {args.out}"), file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
