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

#: BADGE is chosen for tasks with at least this many classes ...
MIN_CLASSES = 15
#: ... while the model has seen fewer than this many labels per class, or while the batch is
#: more than half the labeled set (see :func:`choose`).
LABELS_PER_CLASS = 40


def choose(*, n_classes, n_labeled, k, has_embeddings) -> tuple:
    """``(strategy, reason)``: the strategy ``auto`` runs this round.

    BADGE when embeddings are given, the task has many classes (at least
    :data:`MIN_CLASSES`), and either the model has seen few labels per class (below
    :data:`LABELS_PER_CLASS`) or the batch is more than half the labeled set; margin
    sampling otherwise.

    Why (bench/label_efficiency.md, logistic regression): on 20 Newsgroups (20 classes) a
    model trained on a few labels per class is unsure about most of the pool at once, and
    margin sampling's top-k then crowds into a few confusable regions: its learning curve
    falls *below* random's for the first rounds (batches of 100 up to about 700 labels; a
    first batch of 1,000 on 1,000 labels), while BADGE's k-means++ in gradient space stays
    above random; later margin overtakes BADGE. On the 10-class and 2-class data sets
    (Fashion-MNIST, digits, Rotten Tomatoes) margin sampling was as good as BADGE or better
    from the first round, at batches of 100 and 1,000.
    """
    per_class = n_labeled / max(n_classes, 1)
    if not has_embeddings:
        return "margin", "no embeddings given: margin sampling"
    if n_classes >= MIN_CLASSES and per_class < LABELS_PER_CLASS:
        return "badge", (f"{n_classes} classes and {per_class:.1f} labels per class "
                         f"(< {LABELS_PER_CLASS}): diversity in gradient space")
    if n_classes >= MIN_CLASSES and 2 * k > n_labeled:
        return "badge", (f"{n_classes} classes and a batch of {k} on {n_labeled} labels (more "
                         "than half): diversity in gradient space")
    return "margin", f"{n_classes} classes, {per_class:.1f} labels per class: margin sampling"


def auto(pool, k, embeddings=None):
    """The ``auto`` strategy of :func:`fastal.select` (``pool`` is its private ``_Pool``)."""
    from .select import STRATEGIES

    if embeddings is None:
        # Margin's own path: streamed from files, never read whole into memory.
        strategy, reason = choose(n_classes=0, n_labeled=0, k=int(k), has_embeddings=False)
    else:
        probs = pool.probabilities()
        strategy, reason = choose(n_classes=int(probs.shape[1]),
                                  n_labeled=int(pool.labeled.size), k=int(k),
                                  has_embeddings=True)
    if strategy == "margin":
        inner = STRATEGIES["margin"].fn(pool, k)
    else:
        from .diversity.badge import badge

        inner = badge(embeddings, probs, k, labeled=pool.labeled, seed=pool.seed)
    extra = dict(inner.extra)
    extra.update(chosen=strategy, reason=reason)
    return Selection(inner.indices, inner.scores, ids=inner.ids, method="auto",
                     n_pool=inner.n_pool, extra=extra)
