"""Diversity strategies: pick rows that cover the pool's embedding space."""

from .kcenter import kcenter

__all__ = ["kcenter"]
