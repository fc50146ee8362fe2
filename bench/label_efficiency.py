"""Label savings of each strategy against random sampling, on real data, with fastal.simulate.

For each dataset every strategy starts from the same random seed set in repeat r (a paired
comparison) and labels batches until the budget; the test accuracy after each retraining gives
a learning curve. The table reports, for the accuracy random sampling reaches at a budget, how
many labels each strategy needs (linear interpolation on the mean curve) and the share saved.

    python bench/label_efficiency.py                    # the full run (bench/label_efficiency.md)
    python bench/label_efficiency.py --quick            # a smoke run in about a minute
    python bench/label_efficiency.py --datasets fashion --repeats 3

Datasets (all offline after the first fetch, see fastal.datasets):

- fashion: Fashion-MNIST, PCA to 50 dimensions fitted on the unlabeled pool (no labels used),
  logistic regression; test on the 10,000 test images. k-center strategies use the PCA features.
- rt: Rotten Tomatoes snippets, TF-IDF (unigrams + bigrams, 20,000 features) and logistic
  regression; 20 % stratified test split. k-center strategies use a 100-d TruncatedSVD of the
  pool's TF-IDF (no labels used), rows scaled to unit length (l2 then ranks like cosine).
- digits: scikit-learn's 8x8 digits (small; a sanity check), pixels in [0, 1].
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from fastal.loop import STRATEGIES, simulate  # noqa: E402

ALL = ("random", "margin", "entropy", "least_confidence", "kcenter", "uncertain_kcenter")
DEFAULT = "margin"


def fashion(args):
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression

    from fastal.datasets import load_fashion_mnist

    X, y, X_test, y_test = load_fashion_mnist()
    pool_note = "all 60,000 training images"
    if args.pool and args.pool < X.shape[0]:
        rows = np.sort(np.random.default_rng(args.seed).choice(X.shape[0], args.pool,
                                                                replace=False))
        X, y = X[rows], y[rows]
        pool_note = f"{args.pool:,} training images drawn at random (seed {args.seed})"
    t0 = time.perf_counter()
    pca = PCA(50, random_state=0).fit(X)  # unsupervised, on the pool only
    Z = np.ascontiguousarray(pca.transform(X), dtype=np.float32)
    Z_test = np.ascontiguousarray(pca.transform(X_test), dtype=np.float32)
    setup = time.perf_counter() - t0
    model = LogisticRegression(max_iter=1000)
    return dict(name="Fashion-MNIST", key="fashion", X=Z, y=y, X_test=Z_test, y_test=y_test,
                embeddings=Z, model=model, options={},
                seed_size=100, batch_size=100, budget=args.budget or (1000 if args.quick else 2000),
                describe=(f"pool: {pool_note}; test: 10,000 images. Features: PCA-50 fitted on "
                          f"the pool without labels ({setup:.1f} s). Model: "
                          "LogisticRegression(max_iter=1000). k-center on the PCA features "
                          "(l2)."))


def rotten_tomatoes(args):
    from sklearn.decomposition import TruncatedSVD
    from sklearn.linear_model import LogisticRegression

    from fastal.datasets import load_rotten_tomatoes_tfidf

    X, y, X_test, y_test = load_rotten_tomatoes_tfidf(test_size=0.2, seed=0)
    t0 = time.perf_counter()
    svd = TruncatedSVD(100, random_state=0).fit(X)
    E = svd.transform(X)
    # Unit rows, so l2 ranks like cosine; snippets with no kept word stay at the origin
    # (cosine distance is undefined for them).
    norms = np.linalg.norm(E, axis=1, keepdims=True)
    E = np.ascontiguousarray(E / np.where(norms > 0, norms, 1.0), dtype=np.float32)
    setup = time.perf_counter() - t0
    model = LogisticRegression(max_iter=1000)
    return dict(name="Rotten Tomatoes", key="rt", X=X, y=y, X_test=X_test, y_test=y_test,
                embeddings=E, model=model, options={},
                seed_size=100, batch_size=100, budget=args.budget or (1000 if args.quick else 2000),
                describe=(f"pool: {X.shape[0]:,} snippets, test: {X_test.shape[0]:,} "
                          f"(stratified 20 % split, seed 0). Features: TF-IDF uni+bigrams, "
                          f"{X.shape[1]:,} columns (sparse). Model: "
                          "LogisticRegression(max_iter=1000). k-center on a 100-d TruncatedSVD "
                          "of the pool's TF-IDF, rows scaled to unit length, l2 distance "
                          f"({setup:.1f} s; {int((norms == 0).sum())} empty rows stay at 0)."))


def digits(args):
    from sklearn.linear_model import LogisticRegression

    from fastal.datasets import load_digits

    X, y = load_digits(scale=True)
    order = np.random.default_rng(0).permutation(X.shape[0])
    X, y = X[order], y[order]
    return dict(name="digits", key="digits", X=X[:1400], y=y[:1400], X_test=X[1400:],
                y_test=y[1400:], embeddings=X[:1400], model=LogisticRegression(max_iter=1000),
                options={}, seed_size=20, batch_size=10, budget=300,
                describe=("pool: 1,400 of the 1,797 8x8 digits (shuffled, seed 0), test: the "
                          "other 397. Pixels in [0, 1]. Model: LogisticRegression(max_iter=1000)."))


LOADERS = {"fashion": fashion, "rt": rotten_tomatoes, "digits": digits}

NOTES = """## How to read this

- Every strategy starts, in repeat r, from the same random seed set and uses the same seed,
  so differences between strategies are paired. Curves are the mean test accuracy over repeats
  after each retraining; the savings table interpolates them linearly.
- Times are per round: `fastal selection` is the strategy's call (scoring + top-k, or
  k-center); `model fit` and `predict pool` are the user's logistic regression (one BLAS
  thread, `--blas-threads`). Scoring the test set for the curves is not counted.
- Rotten Tomatoes has two classes, so margin and least confidence rank rows identically
  (1 - (p1 - p2) = 2 (1 - p1)); entropy is also monotone in p1 but ties resolve differently in
  float32, hence the small differences.
- `uncertain_kcenter` runs k-center among the `beta * k` highest-margin unlabeled rows (default
  beta 10, `--beta`). On Fashion-MNIST the k-center step pulls the batch toward outliers of the
  PCA space; smaller beta moves it toward plain margin sampling.
- The default strategy of `fastal.loop` is margin: the only strategy here that saved labels
  on all three datasets and met the 40 % goal on Fashion-MNIST at both budgets.
"""


def run_dataset(spec, args):
    budgets = (spec["budget"] // 2, spec["budget"])
    if spec["key"] != "digits" and spec["budget"] >= 2000:
        budgets = (1000, 2000)
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    # BLAS threads of the model (not fastal's Numba threads): on a small shared machine a
    # multi-threaded BLAS inside lbfgs is mostly waiting (measured 10x slower fits).
    with warnings.catch_warnings(), threadpool_limits(args.blas_threads, user_api="blas"):
        warnings.simplefilter("ignore")  # lbfgs convergence chatter on tiny labeled sets
        result = simulate(spec["X"], spec["y"], spec["X_test"], spec["y_test"], spec["model"],
                          strategies=args.strategies, seed_size=spec["seed_size"],
                          batch_size=spec["batch_size"], budget=spec["budget"],
                          repeats=args.repeats, seed=args.seed, seed_strategy="random",
                          embeddings=spec["embeddings"],
                          strategy_options={**spec["options"], "beta": args.beta},
                          progress=not args.no_progress)
    seconds = time.perf_counter() - t0
    os.makedirs(os.path.join(HERE, "plots"), exist_ok=True)
    curves_png = os.path.join(HERE, "plots", f"label_efficiency_{spec['key']}.png")
    timing_png = os.path.join(HERE, "plots", f"label_efficiency_{spec['key']}_timing.png")
    try:
        from fastal.report import plot_timing

        result.plot(curves_png, title=f"{spec['name']}: test accuracy vs labels")
        plot_timing(result, timing_png, title=f"{spec['name']}: seconds per round")
    except Exception as error:  # plots are optional; the tables are the result
        print(f"plots skipped: {error}", file=sys.stderr)
        curves_png = timing_png = None
    return result, budgets, seconds, curves_png, timing_png


def section(spec, result, budgets, seconds, curves_png, timing_png):
    table = result.labels_saved_table(budgets=budgets)
    lines = [f"## {spec['name']}", "", spec["describe"], "",
             f"Seed set {spec['seed_size']} random rows (the same for every strategy within a "
             f"repeat), batches of {spec['batch_size']}, budget {spec['budget']}, "
             f"{result.params['repeats']} repeats; {seconds:.0f} s for this dataset.", "",
             f"### Labels needed to reach random sampling's mean accuracy at {budgets[0]} and "
             f"{budgets[1]} labels", "", table.to_markdown(), ""]
    lines += ["Positive = fewer labels than random; \"not reached\" = the strategy's mean curve "
              "never reaches that accuracy within the budget. The random row measures the "
              "noise of the method (its own curve can touch the target early).", ""]
    # accuracy at the budgets
    head = "| strategy | " + " | ".join(f"accuracy @{b} (mean ± std)" for b in budgets) + " |"
    lines += ["### Test accuracy at the budgets", "", head, "|---|" + "---|" * len(budgets)]
    for i, name in enumerate(result.strategies):
        cells = []
        for b in budgets:
            t = int(np.searchsorted(result.label_counts, b))
            cells.append(f"{result.mean[i, t]:.4f} ± {result.std[i, t]:.4f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    # timing
    timing = result.timing()
    lines += ["### Seconds per round (mean over rounds and repeats)", "",
              "| strategy | fastal selection | model fit (user) | predict pool (user) | "
              "selection share |", "|---|---|---|---|---|"]
    for name, (sel, fit, pred) in timing.items():
        share = sel / (sel + fit + pred) if sel + fit + pred > 0 else 0.0
        lines.append(f"| {name} | {sel:.4f} | {fit:.4f} | {pred:.4f} | {100 * share:.1f} % |")
    lines.append("")
    # verdicts
    saved = table.saved_percent
    names = list(table.strategies)
    verdicts = []
    for i, name in enumerate(names):
        if name == "random":
            continue
        worse = [b for j, b in enumerate(budgets)
                 if np.isnan(saved[i, j]) or saved[i, j] < 0]
        verdicts.append(f"- {name}: " + ("worse than random at " + ", ".join(map(str, worse))
                                         if worse else "never worse than random at these budgets")
                        + f" (saved {', '.join(_fmt(v) for v in saved[i])}).")
    lines += ["### Verdict", ""] + verdicts + [""]
    if curves_png:
        rel = os.path.relpath(curves_png, HERE)
        rel_t = os.path.relpath(timing_png, HERE)
        lines += [f"![{spec['name']} learning curves]({rel})", "",
                  f"![{spec['name']} time per round]({rel_t})", ""]
    return "\n".join(lines), table


def _fmt(value):
    return "not reached" if np.isnan(value) else f"{value:+.1f} %"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="fashion,rt,digits",
                        help="comma-separated subset of fashion, rt, digits")
    parser.add_argument("--strategies", default=",".join(ALL),
                        help=f"comma-separated, from {', '.join(STRATEGIES)}")
    parser.add_argument("--repeats", type=int, default=None, help="default 10 (quick: 1)")
    parser.add_argument("--pool", type=int, default=None,
                        help="subsample Fashion-MNIST's pool to this many rows "
                             "(default: all 60,000; quick: 10,000)")
    parser.add_argument("--budget", type=int, default=None,
                        help="labels per run for fashion and rt (default 2000; quick: 1000)")
    parser.add_argument("--beta", type=int, default=10,
                        help="uncertain_kcenter: k-center among the beta*k highest-margin rows")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="BLAS threads for the model's fit/predict (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--out", default=os.path.join(HERE, "label_efficiency.md"))
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    args.strategies = [s for s in args.strategies.split(",") if s]
    if "random" not in args.strategies:
        parser.error("--strategies must include random (the baseline)")
    if args.repeats is None:
        args.repeats = 1 if args.quick else 10
    if args.pool is None and args.quick:
        args.pool = 10000
    keys = [k for k in args.datasets.split(",") if k]
    for key in keys:
        if key not in LOADERS:
            parser.error(f"unknown dataset {key!r}; choose from {', '.join(LOADERS)}")

    import numba

    command = "python bench/label_efficiency.py " + " ".join(argv if argv is not None
                                                             else sys.argv[1:])
    started = time.perf_counter()
    parts = []
    summary = []
    for key in keys:
        print(f"[{key}] loading", file=sys.stderr)
        spec = LOADERS[key](args)
        print(f"[{key}] simulating {len(args.strategies)} strategies x {args.repeats} repeats",
              file=sys.stderr)
        result, budgets, seconds, curves_png, timing_png = run_dataset(spec, args)
        text, table = section(spec, result, budgets, seconds, curves_png, timing_png)
        print(text)
        parts.append(text)
        summary.append((spec["name"], budgets, table))
    total = time.perf_counter() - started

    head = ["# Label efficiency: active-learning strategies vs random sampling", "",
            f"Command: `{command.strip()}`  ", f"Total time: {total / 60:.1f} min on "
            f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}, Numba "
            f"threads {numba.get_num_threads()}), shared with other jobs.  ",
            "Produced by `bench/label_efficiency.py` with `fastal.simulate`; curves in "
            "`bench/plots/`.", "", "## Summary: labels saved vs random (mean over repeats)", "",
            "| dataset | strategy | saved (smaller budget) | saved (larger budget) |",
            "|---|---|---|---|"]
    for name, budgets, table in summary:
        for i, strategy in enumerate(table.strategies):
            if strategy == "random":
                continue
            cells = [f"{_fmt(table.saved_percent[i, j])} (@{b})" for j, b in enumerate(budgets)]
            marker = " **(default)**" if strategy == DEFAULT else ""
            head.append(f"| {name} | {strategy}{marker} | " + " | ".join(cells) + " |")
    head += ["", NOTES]
    with open(args.out, "w") as handle:
        handle.write("\n".join(head + parts))
    print(f"wrote {args.out} ({total / 60:.1f} min)", file=sys.stderr)


if __name__ == "__main__":
    main()
