"""The README's tour runs as written (on small stand-in data)."""

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

import fastal

README = Path(__file__).resolve().parents[1] / "README.md"


def tour_code():
    text = README.read_text()
    block = re.search(r"## A short tour\n\n```python\n(.*?)```", text, re.S).group(1)
    return block


def test_readme_tour_runs(tmp_path, monkeypatch):
    import warnings

    warnings.filterwarnings("ignore")
    monkeypatch.chdir(tmp_path)
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    X_labeled, y_labeled, X_pool = X[:300], y[:300], X[300:]
    model = LogisticRegression(max_iter=200).fit(X_labeled, y_labeled)
    probs = model.predict_proba(X_pool)
    rng = np.random.default_rng(0)
    table = pa.table({
        "probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.astype(np.float32).ravel()), 10),
        "id": pa.array(np.arange(len(X_pool))),
        **{f"m{m}": pa.FixedSizeListArray.from_arrays(
            pa.array(rng.dirichlet(np.ones(10), len(X_pool)).astype(np.float32).ravel()), 10)
           for m in range(3)},
    })
    pq.write_table(table, "pool.parquet")
    with pa.ipc.new_file("pool.arrow", table.schema) as w:
        w.write_table(table)
    pq.write_table(pa.table({"emb": pa.FixedSizeListArray.from_arrays(pa.array(X_pool.ravel()), 64)}),
                   "embeddings.parquet")
    answers = {"n": 0}

    def ask_annotators(positions):
        answers["n"] += len(positions)
        return y[300:][positions]

    env = dict(
        np=np, fastal=fastal, model=model, X_pool=X_pool, emb=X_pool,
        labeled_rows=np.arange(10), member_probs=np.stack([probs, probs[::-1], probs]),
        fitted_logistic_regression=model, X_labeled=X_labeled, y_labeled=y_labeled,
        LogisticRegression=lambda: LogisticRegression(max_iter=200),
        ask_annotators=ask_annotators, X=X[:1200], y=y[:1200], X_test=X[1200:], y_test=y[1200:],
    )
    code = tour_code().replace("budget=1000, repeats=3", "budget=120, repeats=1, seed_size=20, batch_size=20")
    code = code.replace("budgets=(500, 1000)", "budgets=(60, 120)")
    code = code.replace("budget=1000, seed=0", "budget=200, seed=0")
    exec(compile(code, "README tour", "exec"), env)
    assert answers["n"] > 0
    assert (tmp_path / "curves.png").exists()
