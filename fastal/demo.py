"""The built-in demo: a synthetic pool written as an Arrow IPC file, scored by every method."""

from __future__ import annotations

import os
import sys
import tempfile
import time

import numpy as np

from .scoring import UNCERTAINTY_METHODS, top_k


def write_pool(path, n_rows: int, n_classes: int, seed: int = 0, batch_rows: int = 1 << 16):
    """Write a pool of softmax probabilities as an Arrow IPC file.

    Columns: ``id`` (int64, 1_000_000_000 + row) and ``probs``
    (``fixed_size_list<float32>[n_classes]``). Logits are Gaussian with a per-row
    temperature so the pool mixes confident and uncertain rows. Written batch by batch, so
    memory stays O(batch).
    """
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    schema = pa.schema([("id", pa.int64()), ("probs", pa.list_(pa.float32(), n_classes))])
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for start in range(0, n_rows, batch_rows):
            rows = min(batch_rows, n_rows - start)
            logits = rng.standard_normal((rows, n_classes), dtype=np.float32)
            logits *= rng.uniform(0.5, 6.0, size=(rows, 1)).astype(np.float32)
            logits -= logits.max(axis=1, keepdims=True)
            probs = np.exp(logits)
            probs /= probs.sum(axis=1, keepdims=True)
            values = pa.FixedSizeListArray.from_arrays(pa.array(probs.ravel()), n_classes)
            ids = pa.array(np.arange(start, start + rows, dtype=np.int64) + 1_000_000_000)
            writer.write_batch(pa.record_batch([ids, values], schema=schema))


def run(n_rows: int = 2_000_000, n_classes: int = 10, k: int = 5, seed: int = 0,
        out=None, progress: bool = False) -> dict:
    """Generate the demo pool in a temporary directory, score it by each method, print a table.

    Returns a dict ``{method: (rows_per_second, Selection)}``.
    """
    out = sys.stdout if out is None else out
    results = {}
    with tempfile.TemporaryDirectory(prefix="fastal-demo-") as tmp:
        path = os.path.join(tmp, "pool.arrow")
        t0 = time.perf_counter()
        write_pool(path, n_rows, n_classes, seed)
        size_mb = os.path.getsize(path) / 1e6
        print(f"fastal demo: wrote {n_rows:,} rows x {n_classes} classes ({size_mb:,.0f} MB Arrow IPC) "
              f"in {time.perf_counter() - t0:.1f} s", file=out)
        # Compile (or load from Numba's cache) every method's kernels on a small pool of the
        # same layout first, and report that time apart: rows/s below is scoring alone.
        small = os.path.join(tmp, "small.arrow")
        write_pool(small, 1000, n_classes, seed)
        t0 = time.perf_counter()
        for method in UNCERTAINTY_METHODS:
            top_k(small, k, method, id_column="id")
        print(f"kernels compiled or loaded from the cache in {time.perf_counter() - t0:.1f} s "
              f"(once per machine: Numba caches them on disk; `fastal warmup` does it ahead)",
              file=out)
        print(f"\n{'method':<18}{'rows/s':>14}{'seconds':>9}   top-{k} ids (score)", file=out)
        for method in UNCERTAINTY_METHODS:
            t0 = time.perf_counter()
            sel = top_k(path, k, method, id_column="id", progress=progress)
            dt = time.perf_counter() - t0
            results[method] = (n_rows / dt, sel)
            picks = ", ".join(f"{i} ({s:.4f})" for i, s in zip(sel.ids[:3], sel.scores[:3]))
            print(f"{method:<18}{n_rows / dt:>14,.0f}{dt:>9.3f}   {picks}, ...", file=out)
    print("\n(top_k streams the memory-mapped file in chunks; memory stays O(chunk + k).)", file=out)
    return results


def simulation(out_dir="fastal-demo", *, repeats: int = 3, out=None, progress: bool = True,
               datasets=("digits", "fashion"), cost_per_label: float = 1.0,
               seconds_per_label: float = 20.0) -> dict:
    """The active-learning half of the demo: simulated labelling on real data.

    Digits (bundled with scikit-learn) always; Fashion-MNIST (PCA-50 of the pixels) when the
    cache holds it (``fastal.datasets.fetch_fashion_mnist`` fills it). Strategies: random,
    margin (the default), k-center and uncertain k-center, logistic regression, the same
    seed sets for every strategy. Prints the labels-saved table, what the default strategy
    saves in money and annotator time at ``cost_per_label`` and ``seconds_per_label`` (an
    illustrative $1 and 20 s per label unless given), and writes a PNG and a CSV of the
    learning curves per dataset into ``out_dir``.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    from . import datasets as _data
    from .loop import simulate
    from .select import DEFAULT_STRATEGY

    out = sys.stdout if out is None else out
    os.makedirs(out_dir, exist_ok=True)
    strategies = ("random", "margin", "kcenter", "uncertain_kcenter")
    runs = []
    if "digits" in datasets:
        X, y = _data.load_digits(scale=True)
        order = np.random.default_rng(0).permutation(len(y))
        X, y = X[order], y[order]
        runs.append(("digits", X[:1400], y[:1400], X[1400:], y[1400:],
                     dict(seed_size=20, batch_size=10, budget=300), (150, 300)))
    if "fashion" in datasets:
        try:
            X, y, X_test, y_test = _data.load_fashion_mnist(fetch=False)
        except Exception as exc:  # a missing cache is normal on a fresh machine
            print(f"(Fashion-MNIST skipped: {str(exc).splitlines()[0]}; run "
                  f"`python -c 'import fastal.datasets as d; d.fetch_fashion_mnist()'` to add it)",
                  file=out)
        else:
            from sklearn.decomposition import PCA

            pca = PCA(50, random_state=0).fit(X)  # unsupervised, on the pool only
            runs.append(("fashion-mnist", pca.transform(X).astype(np.float32), y,
                         pca.transform(X_test).astype(np.float32), y_test,
                         dict(seed_size=100, batch_size=100, budget=1000), (500, 1000)))
    results = {}
    for name, X, y, X_test, y_test, sizes, budgets in runs:
        t0 = time.perf_counter()
        # One BLAS thread for the model: on a small shared machine a threaded fit is slower.
        with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = simulate(X, y, X_test, y_test, LogisticRegression(max_iter=500),
                              strategies=strategies, repeats=repeats, seed=0,
                              cost_per_label=cost_per_label,
                              seconds_per_label=seconds_per_label, progress=progress, **sizes)
        seconds = time.perf_counter() - t0
        png = os.path.join(out_dir, f"{name}.png")
        result.plot(png, title=f"{name}: test accuracy vs labels ({repeats} repeats)")
        result.to_csv(os.path.join(out_dir, f"{name}.csv"))
        table = result.labels_saved_table(budgets=budgets)
        print(f"\n## {name}: labels needed to reach random sampling's accuracy "
              f"({len(y):,} pool rows, {repeats} repeats, {seconds:.0f} s)\n", file=out)
        print(table.to_markdown(), file=out)
        print("", file=out)
        shown = DEFAULT_STRATEGY if DEFAULT_STRATEGY in strategies else "margin"
        if shown != DEFAULT_STRATEGY:
            print(f"(the default, {DEFAULT_STRATEGY}, runs margin sampling on this "
                  f"{np.unique(y).size}-class data)", file=out)
        for line in table.sentences(shown):
            print(f"- {line}", file=out)
        print(f"\ncurves: {png}", file=out)
        results[name] = result
    return results
