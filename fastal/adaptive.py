"""``auto``: a strategy that picks, each round, which strategy to run from what it can see.

No single strategy wins everywhere (bench/label_efficiency.md): margin sampling is the
strongest on most data, BADGE's gradient-embedding diversity helps when a weak model spreads
its uncertainty over many classes. ``auto`` decides per round, from quantities it has without
labels -- the batch size, the number of classes, the labels so far, and how the model's
predictions over the pool are spread -- with a rule chosen by measurement (see
:func:`choose` and the benchmark's "Does auto meet the bar" table).
"""

from __future__ import annotations

from ._selection import Selection

#: Strategies ``auto`` delegates to.
DELEGATES = ("margin", "badge")

#: BADGE is chosen when the model has seen fewer than this many labels per class ...
LABELS_PER_CLASS = 25
#: ... and the pool has at least this many classes (see :func:`choose`).
MIN_CLASSES = 15


def choose(*, n_classes, n_labeled, k, has_embeddings) -> tuple:
    """``(strategy, reason)``: the strategy ``auto`` runs this round.

    BADGE when embeddings are given, the task has many classes (at least
    :data:`MIN_CLASSES`) and the model has seen few labels per class (below
    :data:`LABELS_PER_CLASS`): a weak many-class model is unsure about most of the pool at
    once, and margin sampling's top-k then crowds into a few confusable regions that
    BADGE's k-means++ in gradient space spreads out. Margin sampling otherwise.
    """
    per_class = n_labeled / max(n_classes, 1)
    if has_embeddings and n_classes >= MIN_CLASSES and per_class < LABELS_PER_CLASS:
        return "badge", (f"{n_classes} classes and {per_class:.1f} labels per class "
                         f"(< {LABELS_PER_CLASS}): diversity in gradient space")
    if not has_embeddings:
        return "margin", "no embeddings given: margin sampling"
    return "margin", (f"{n_classes} classes, {per_class:.1f} labels per class: margin sampling")


def auto(pool, k, embeddings=None):
    """The ``auto`` strategy of :func:`fastal.select` (``pool`` is its private ``_Pool``)."""
    from .select import STRATEGIES

    probs = pool.probabilities()
    strategy, reason = choose(n_classes=int(probs.shape[1]), n_labeled=int(pool.labeled.size),
                              k=int(k), has_embeddings=embeddings is not None)
    if strategy == "margin":
        inner = STRATEGIES["margin"].fn(pool, k)
    else:
        from .diversity.badge import badge

        inner = badge(embeddings, probs, k, labeled=pool.labeled, seed=pool.seed)
    extra = dict(inner.extra)
    extra.update(chosen=strategy, reason=reason)
    return Selection(inner.indices, inner.scores, ids=inner.ids, method="auto",
                     n_pool=inner.n_pool, extra=extra)
