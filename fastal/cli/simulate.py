"""``fastal simulate DATA``: would active learning pay on data a team has already labeled?"""

from __future__ import annotations

import argparse
import sys

from .._errors import ArgumentError

EPILOG = """\
examples:
  fastal simulate labeled.parquet --label-column y --strategies margin,badge --budget 1000
  fastal simulate tickets.csv --label-column team --features f0,f1,f2 --repeats 5 \\
      --cost-per-label 0.8 --seconds-per-label 25 --out curves.png
  fastal simulate docs.arrow --label-column topic --embedding-column emb --batch-size 100

Strategies start from the same random seed set in each repeat (paired); a held-out share of
each class (--test-size) measures accuracy. The model is a standardised logistic regression
on the features. When no strategy beats random sampling by more than --noise standard errors
of the paired AULC difference, the command says so and recommends random sampling."""


def add_parser(sub):
    sim = sub.add_parser(
        "simulate", help="replay active learning on a labeled file: does it pay on your data?",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Replay active learning on DATA (Parquet, Arrow IPC/Feather or CSV), a file of "
            "examples you have already labeled: each strategy asks for labels batch by batch, "
            "and the labels are revealed from --label-column. Prints how many labels each "
            "strategy needs to reach random sampling's accuracy (and the money and annotator "
            "time that saves), the area under each learning curve with its standard error, "
            "and a recommendation; writes the learning curves as a PNG."),
        epilog=EPILOG)
    sim.add_argument("data", metavar="DATA")
    sim.add_argument("--label-column", required=True, help="the column of labels")
    sim.add_argument("--features", help="comma-separated numeric feature columns (default: "
                                        "every numeric column but the label)")
    sim.add_argument("--embedding-column", help="a list column holding one vector per row, "
                                                "instead of --features")
    sim.add_argument("--strategies", default="auto,margin,badge",
                     help="comma-separated strategies compared with random (default "
                          "auto,margin,badge; `fastal strategies` lists them)")
    sim.add_argument("--budget", type=int, help="labels per run (default: half the pool, "
                                                "at most 2,000)")
    sim.add_argument("--batch-size", type=int, help="labels per round (default budget/20)")
    sim.add_argument("--seed-size", type=int, help="random seed set (default one batch)")
    sim.add_argument("--repeats", type=int, default=3, help="paired repeats (default 3)")
    sim.add_argument("--test-size", type=float, default=0.2,
                     help="share of each class held out for accuracy (default 0.2)")
    sim.add_argument("--cost-per-label", type=float, help="price of one label, e.g. 0.8")
    sim.add_argument("--seconds-per-label", type=float, help="annotator seconds per label")
    sim.add_argument("--noise", type=float, default=2.0,
                     help="standard errors a gain must exceed to count (default 2)")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--out", default="fastal-simulate.png",
                     help="learning curves PNG (default ./fastal-simulate.png; '-' for none)")
    sim.add_argument("--csv", help="also write the mean curves as CSV")
    sim.add_argument("--no-progress", action="store_true")
    return sim


def run(args) -> int:
    from ..loop.labeled_file import simulate_file

    if args.out != "-" and not args.out.lower().endswith((".png", ".svg", ".pdf")):
        raise ArgumentError(f"--out must end in .png, .svg or .pdf (or be '-'); got {args.out!r}")
    strategies = [s for s in args.strategies.split(",") if s]
    features = [f for f in args.features.split(",") if f] if args.features else None
    result = simulate_file(
        args.data, args.label_column, features=features, embedding_column=args.embedding_column,
        strategies=strategies, test_size=args.test_size, seed_size=args.seed_size,
        batch_size=args.batch_size, budget=args.budget, repeats=args.repeats, seed=args.seed,
        cost_per_label=args.cost_per_label, seconds_per_label=args.seconds_per_label,
        progress=not args.no_progress)
    p = result.params
    print(f"fastal simulate: {p['data']}: pool {p['n_pool']:,} rows, test {p['n_test']:,}, "
          f"features {', '.join(p['features'])[:80]}; seed set {p['seed_size']}, batches of "
          f"{p['batch_size']}, budget {p['budget']:,}, {p['repeats']} repeats\n")
    print(result.report(metric="accuracy"))
    name, sentence = result.recommendation(noise=args.noise)
    if name == "random":
        print("\nrecommendation: random sampling.")
    else:
        print(f"\nrecommendation: {name}.")
    if args.out != "-":
        result.plot(args.out, title=f"{p['data']}: test accuracy vs labels")
        print(f"curves: {args.out}", file=sys.stderr)
    if args.csv:
        result.to_csv(args.csv)
        print(f"curves (CSV): {args.csv}", file=sys.stderr)
    return 0
