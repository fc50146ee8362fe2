"""``fastal plot DIR``: one PNG of a project's progress, drawn from the ledger alone."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from . import _files


def plot_project(project, out) -> str:
    """Three panels: labels per round, class balance over rounds, batch scores vs the pool."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    q = project.ledger.query
    rounds = q("SELECT round, pool_scores FROM rounds ORDER BY round")
    chosen, _ = project.training_labels()
    per_round = {}
    for r, status, n in q("SELECT round, status, count(*) FROM selections GROUP BY round, status"):
        per_round.setdefault(r, {})[status] = n
    label_round = {}
    for id_, rnd in q("SELECT id, min(coalesce(round, 0)) FROM labels GROUP BY id"):
        label_round[id_] = rnd
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))

    ax = axes[0]
    numbers = [r for r, _ in rounds]
    bottom = np.zeros(len(numbers))
    colours = {"labeled": "tab:green", "pending": "tab:orange", "skipped": "tab:grey",
               "requeued": "tab:purple"}
    for status in ("labeled", "pending", "skipped", "requeued"):
        values = np.array([per_round.get(r, {}).get(status, 0) for r in numbers], dtype=float)
        if values.any():
            ax.bar(numbers, values, bottom=bottom, label=status, color=colours[status])
            bottom += values
    unselected = sum(1 for i in chosen if label_round.get(i, 0) == 0)
    if unselected:
        ax.bar([0], [unselected], color="tab:blue", label="labeled outside rounds")
    ax.set_xlabel("round")
    ax.set_ylabel("ids")
    ax.set_title("Selected ids per round, by status")
    if numbers or unselected:
        ax.legend(fontsize=8)

    ax = axes[1]
    classes = sorted(Counter(chosen.values()))
    upto = sorted(set([0] + numbers))
    if classes:
        cumulative = []
        for r in upto:
            counts = Counter(lab for i, lab in chosen.items() if (label_round.get(i) or 0) <= r)
            total = max(1, sum(counts.values()))
            cumulative.append([counts.get(c, 0) / total for c in classes])
        cumulative = np.array(cumulative)
        ax.stackplot(upto, cumulative.T, labels=classes)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8, loc="upper right", ncol=max(1, len(classes) // 8))
    ax.set_xlabel("round (labels received up to it)")
    ax.set_ylabel("share of labeled ids")
    ax.set_title("Class balance over rounds (policy: " + project.config["policy"] + ")")

    ax = axes[2]
    method = None
    for r, pool_scores in rounds:
        if not pool_scores:
            continue
        hist = json.loads(pool_scores)
        method = hist["method"]
        edges = np.array(hist["edges"])
        counts = np.array(hist["counts"], dtype=float)
        width = np.diff(edges)
        density = counts / max(1.0, counts.sum()) / width
        line, = ax.step(edges[:-1], density, where="post", alpha=0.6,
                        label=f"pool, round {r}")
        batch = [u for (u,) in q("SELECT uncertainty FROM selections WHERE round=? AND "
                                 "uncertainty IS NOT NULL", (r,))]
        if batch:
            b_counts, _ = np.histogram(np.clip(batch, edges[0], edges[-1]), edges)
            ax.step(edges[:-1], b_counts / max(1, len(batch)) / width, where="post",
                    color=line.get_color(), linestyle="--", label=f"batch, round {r}")
    ax.set_xlabel(f"{method or 'uncertainty'} score")
    ax.set_ylabel("density")
    ax.set_title("Scores of each batch (dashed) vs the unlabeled pool")
    if method:
        ax.legend(fontsize=7)
    from matplotlib.ticker import MaxNLocator
    for a in axes[:2]:
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"fastal project {project.dir}")
    fig.tight_layout()
    out = Path(out)
    _files.atomic_write(out, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
    return str(out)
