"""Fault-injection points for the crash tests (a no-op unless a test sets the variable).

``FASTAL_FAULT_POINT=name`` makes the process kill itself with SIGKILL the first time it
reaches ``point(name)``: the tests use it to stop ``select`` and ``label`` between two steps
of a transaction, or between the commit and the files, and then check what survived.
"""

from __future__ import annotations

import os
import signal

_VARIABLE = "FASTAL_FAULT_POINT"


def point(name: str) -> None:
    """Die here, at once and without cleanup, if the crash test asked for ``name``."""
    if os.environ.get(_VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)
