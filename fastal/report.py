"""Plots of simulation results (matplotlib, optional, imported only when a plot is made)."""

from __future__ import annotations

from ._errors import FastalError


def _pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display needed)."""
    try:
        import matplotlib
    except ImportError as error:
        raise FastalError("plotting needs matplotlib, an optional dependency: "
                          "pip install 'fastal[plot]' (or pip install matplotlib)") from error
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(result, path, *, title=None, baseline="random"):
    """Write the mean test accuracy (shaded: +/- one std over repeats) per label count.

    Parameters
    ----------
    result : fastal.loop.SimulationResult
    path : str or path-like
        Output file; the format follows the suffix (PNG recommended).
    title : str, optional
    baseline : str, default "random"
        Drawn dashed and black, so the other strategies read against it.

    Returns
    -------
    path
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 4.5), dpi=120)
    counts = result.label_counts
    for i, name in enumerate(result.strategies):
        mean, std = result.mean[i], result.std[i]
        style = dict(color="black", linestyle="--", linewidth=1.6) if name == baseline \
            else dict(linewidth=1.4)
        line, = ax.plot(counts, mean, label=name, **style)
        ax.fill_between(counts, mean - std, mean + std, color=line.get_color(), alpha=0.15,
                        linewidth=0)
    params = result.params
    subtitle = (f"{params.get('repeats', '?')} repeats, seed set {params.get('seed_size', '?')}, "
                f"batches of {params.get('batch_size', '?')}, pool {params.get('n_pool', '?')}")
    ax.set_title(f"{title}\n{subtitle}" if title else subtitle, fontsize=10)
    ax.set_xlabel("labels")
    ax.set_ylabel("test accuracy")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(str(path))
    plt.close(fig)
    return path


def plot_timing(result, path, *, title=None):
    """Bar chart of mean seconds per round: fastal selection vs the model's training and
    pool prediction, per strategy. Returns ``path``."""
    import numpy as np

    plt = _pyplot()
    timing = result.timing()
    names = list(timing)
    select = np.array([timing[n][0] for n in names])
    fit = np.array([timing[n][1] for n in names])
    predict = np.array([timing[n][2] for n in names])
    fig, ax = plt.subplots(figsize=(7.0, 3.8), dpi=120)
    x = np.arange(len(names))
    ax.bar(x, fit, label="model fit (user)")
    ax.bar(x, predict, bottom=fit, label="predict pool (user)")
    ax.bar(x, select, bottom=fit + predict, label="selection (fastal)")
    ax.set_xticks(x, names, rotation=20, fontsize=8)
    ax.set_ylabel("seconds per round")
    ax.set_title(title or "time per round", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(str(path))
    plt.close(fig)
    return path
