"""Whether a kernel is ready to run without compiling (``fastal.diversity.kcenter``'s
choice of path in a fresh process). Outside ``_kernels``: it reads files, Numba's cache.

A Numba kernel runs at once when this process has compiled (or loaded) a specialisation for
the arguments, or when Numba's on-disk cache holds one for this CPU: loading it takes
milliseconds, compiling it seconds. Numba has no public call that asks its cache without
loading from it, so :func:`compiled` reads the index Numba keeps beside each cached
function (``numba.core.caching``, Numba 0.59-0.68). If that ever changes, the answer is
"ready", which keeps the choices made before this check existed.
"""

import inspect

import numpy as np
from numba import types
from numba.core.caching import NullCache


def compiled(kernel, dtype, none=None):
    """Whether ``kernel`` (a Numba dispatcher) has a specialisation whose first argument is
    an array of ``dtype``, compiled in this process or in Numba's cache for this CPU.

    Parameters
    ----------
    kernel : numba dispatcher
        A kernel compiled with ``cache=True`` (without, only this process counts). A plain
        function (``NUMBA_DISABLE_JIT``) is always ready.
    dtype : numpy dtype
        The dtype of the array passed as the kernel's first argument.
    none : dict of {str: bool}, optional
        Only specialisations whose argument of that name is None (True) or not (False):
        kernels that compile different code for a None argument (e.g. no weights).

    Returns
    -------
    bool
    """
    overloads = getattr(kernel, "overloads", None)
    if overloads is None:
        return True
    want = np.dtype(dtype)

    positions = {}
    if none:
        names = list(inspect.signature(kernel.py_func).parameters)
        positions = {names.index(name): is_none for name, is_none in none.items()}

    def first_is(signature):
        first = signature[0] if len(signature) else None
        if getattr(getattr(first, "dtype", None), "name", None) != want.name:
            return False
        return all(len(signature) > at and isinstance(signature[at], types.NoneType) == is_none
                   for at, is_none in positions.items())

    if any(first_is(signature) for signature in overloads):
        return True
    cache = getattr(kernel, "_cache", None)
    if isinstance(cache, NullCache):
        return False
    try:
        index = cache._cache_file._load_index()
        magic = kernel.targetctx.codegen().magic_tuple()
        return any(key[1] == magic and first_is(key[0]) for key in index)
    except Exception:  # Numba's cache internals changed, or an unreadable index
        return True
