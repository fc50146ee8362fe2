"""Diversity strategies: pick rows that cover the pool's embedding space."""

from .badge import badge
from .clustering import cluster_margin, kmeans_sample
from .coldstart import typiclust
from .kcenter import kcenter

__all__ = ["badge", "cluster_margin", "kcenter", "kmeans_sample", "typiclust"]
