"""Annotation rounds as batch jobs: a project directory and its crash-safe label ledger.

The only code in fastal that writes state. A project remembers, across processes and days,
what was picked in which round, what is pending, what came back from the annotators and
which labels disagree, in one SQLite ledger (WAL, ``synchronous=FULL``, one transaction per
user action). See the README's "Annotation rounds" and ``fastal init --help``.

>>> from fastal.project import Project                          # doctest: +SKIP
>>> project = Project.init("run", "pool.parquet", "id", probs_column="probs")
>>> batch = project.select(1000, outputs="outputs.parquet")
>>> project.label("annotations.csv").added
"""

from .project import (
    MARKER, POLICIES, FastalWarning, ImportResult, Project, RoundResult, is_project, load_head,
)

__all__ = ["MARKER", "POLICIES", "FastalWarning", "ImportResult", "Project", "RoundResult",
           "is_project", "load_head"]
