"""Vectorisable float32 math for kernels (Numba only).

LLVM can vectorise a loop only if every call in it has a vector form. ``np.log`` lowers to
a libm call that it cannot vectorise here (no SVML), so the entropy kernel uses ``log32``:
a Cephes-style logarithm built from bit operations, additions and multiplications only.
Accuracy: relative error below 2e-7 on normal positive float32 inputs (tested against
``np.log`` in float64).
"""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from .._config import FASTMATH


@intrinsic
def _float32_bits(typingctx, x):
    """Reinterpret a float32 as int32 (an LLVM bitcast: no conversion, no memory)."""
    if x != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(types.float32), codegen


@intrinsic
def _bits_float32(typingctx, x):
    """Reinterpret an int32 as float32."""
    if x != types.int32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


_SQRT2 = np.float32(1.41421356)
_LN2 = np.float32(0.693147180559945)


@njit(inline="always", fastmath=FASTMATH)
def log32(x):
    """Natural log of a positive, normal, finite float32 (callers mask other inputs).

    x = 2^e * m with m in [1, 2); folding m > sqrt(2) into [sqrt(1/2), 1) keeps f = m - 1
    small, where a degree-9 polynomial (Cephes ``logf``) is accurate to float32 precision.
    """
    bits = _float32_bits(x)
    e = ((bits >> 23) & 0xFF) - 127
    m = _bits_float32(np.int32((bits & 0x007FFFFF) | 0x3F800000))
    big = m > _SQRT2
    m = np.float32(0.5) * m if big else m
    e = e + 1 if big else e
    f = m - np.float32(1.0)
    z = f * f
    y = np.float32(7.0376836292e-2)
    y = y * f + np.float32(-1.1514610310e-1)
    y = y * f + np.float32(1.1676998740e-1)
    y = y * f + np.float32(-1.2420140846e-1)
    y = y * f + np.float32(1.4249322787e-1)
    y = y * f + np.float32(-1.6668057665e-1)
    y = y * f + np.float32(2.0000714765e-1)
    y = y * f + np.float32(-2.4999993993e-1)
    y = y * f + np.float32(3.3333331174e-1)
    y = y * f * z - np.float32(0.5) * z
    return f + y + np.float32(e) * _LN2
