"""fastal._compiled: what this process compiled, what Numba's cache holds."""

import os
import subprocess
import sys
import textwrap

import numpy as np
from numba import njit

from fastal._compiled import compiled

_MODULE = """
from numba import njit

@njit(cache=True)
def first(x):
    return x[0]


@njit(cache=True)
def scaled(x, w):
    return x[0] if w is None else x[0] * w[0]
"""

_CHILD = """
import sys
import numpy as np
sys.path.insert(0, {path!r})
from fastal._compiled import compiled
from cached_kernel import first
before = compiled(first, np.float32), compiled(first, np.float64)
if {call}:
    first(np.ones(3, np.float32))
print(before, (compiled(first, np.float32), compiled(first, np.float64)))
"""


def _child(tmp_path, call):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-c", _CHILD.format(path=str(tmp_path), call=call)],
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip()


def test_compiled_sees_this_process_then_the_cache(tmp_path):
    (tmp_path / "cached_kernel.py").write_text(textwrap.dedent(_MODULE))
    # empty cache: nothing until the call compiles float32 (and float32 only)
    assert _child(tmp_path, True) == "(False, False) (True, False)"
    # a new process: float32 is in the cache before any call, float64 is not
    assert _child(tmp_path, False) == "(True, False) (True, False)"


def test_compiled_without_a_cache_counts_this_process():
    @njit
    def second(x):
        return x[1]

    assert not compiled(second, np.float64)
    second(np.ones(3))
    assert compiled(second, np.float64) and not compiled(second, np.int64)


def test_plain_functions_are_ready():
    # NUMBA_DISABLE_JIT: kernels are Python functions, nothing to compile
    assert compiled(lambda x: x, np.float32)


_NONE_CHILD = """
import sys
import numpy as np
sys.path.insert(0, {path!r})
from fastal._compiled import compiled
from cached_kernel import scaled
x = np.ones(3, np.float32)
if {call}:
    scaled(x, None)
print([compiled(scaled, np.float32, {{"w": v}}) for v in (True, False)],
      compiled(scaled, np.float32))
"""


def test_compiled_tells_none_arguments_apart(tmp_path):
    # kernels compile other code for a None argument: ``none`` asks for one or the other,
    # in this process (the first child) and in the cache (the second)
    (tmp_path / "cached_kernel.py").write_text(_MODULE)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    outs = []
    for call in (True, False):
        out = subprocess.run(
            [sys.executable, "-c", _NONE_CHILD.format(path=str(tmp_path), call=call)],
            env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-3000:]
        outs.append(out.stdout.strip())
    assert outs == ["[True, False] True", "[True, False] True"]
