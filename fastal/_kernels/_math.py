"""Vectorisable float32 math for kernels (Numba only).

LLVM can vectorise a loop only if every call in it has a vector form. ``np.log`` lowers to
a libm call that it cannot vectorise here (no SVML), so the entropy kernel uses ``log32``:
a Cephes-style logarithm built from bit operations, additions and multiplications only.
Accuracy: relative error below 2e-7 on normal positive float32 inputs (tested against
``np.log`` in float64).

The polynomials are evaluated with :func:`fma`, LLVM's ``llvm.fma`` intrinsic: one rounding
per step on every CPU (a fused instruction where the CPU has one, a correctly rounded library
call where it does not). Letting the compiler contract ``a * b + c`` instead would round once
on CPUs with FMA and twice on those without, so the same input could score differently on
two machines; fastal's fastmath flags therefore exclude contraction (see ``_config``).
"""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .._config import FASTMATH


# Options of the helpers kernels call (never called from Python): no CPython or C wrapper.
# Numba otherwise generates, optimises and emits both for every function it compiles, though
# only a kernel's CPython wrapper is ever used; a first call in a fresh process compiles
# one per helper (10-20 helpers per kernel family: 10-15 % of its compile time).
HELPER = {"no_cpython_wrapper": True, "no_cfunc_wrapper": True}
# Options of the kernels drivers call: the CPython wrapper only.
KERNEL = {"no_cfunc_wrapper": True}

# Fast-math flags of the helpers whose float32 sums only bound or compare (never define a
# result): any summation order, contracted or not. Bound: s = fl(sum_j t_j) over d terms,
# each a product (or square) rounded once and of at most one difference rounded once (or
# fused), summed in any order: |s - S| <= g sum_j |t_j| (g S for non-negative terms) with
# g = (d + 2) u / (1 - (d + 2) u), u = 2^-24, S the exact sum, as long as nothing
# underflows; a flushed or subnormal term adds at most 2^-126 (the absolute slack). Callers
# keep values within the l2 range check, so nothing overflows; float64 operands summed in
# float64 are bounded tighter still.
FAST32 = {"reassoc", "contract"}


def bounds32(d):
    """``(rel, slack)`` of a float32 sum of ``d`` terms in any order (see ``FAST32``), with a
    margin of 2x: ``|s - S| <= rel sum |t_j| + slack``."""
    u = 2.0**-24
    g = (d + 2) * u / (1.0 - (d + 2) * u)
    return 2.0 * g, (d + 2) * 2.0**-124


@intrinsic
def fma(typingctx, a, b, c):
    """a * b + c rounded once (IEEE 754 fusedMultiplyAdd), float32 or float64."""
    if not (a == b == c and a in (types.float32, types.float64)):
        return None

    def codegen(context, builder, signature, args):
        t = args[0].type
        name = "llvm.fma.f32" if a == types.float32 else "llvm.fma.f64"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(t, [t, t, t]), name)
        return builder.call(fn, args)

    return a(a, b, c), codegen


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


@njit(fastmath=FASTMATH, **HELPER)
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
    y = fma(y, f, np.float32(-1.1514610310e-1))
    y = fma(y, f, np.float32(1.1676998740e-1))
    y = fma(y, f, np.float32(-1.2420140846e-1))
    y = fma(y, f, np.float32(1.4249322787e-1))
    y = fma(y, f, np.float32(-1.6668057665e-1))
    y = fma(y, f, np.float32(2.0000714765e-1))
    y = fma(y, f, np.float32(-2.4999993993e-1))
    y = fma(y, f, np.float32(3.3333331174e-1))
    y = fma(y * f, z, np.float32(-0.5) * z)
    return fma(np.float32(e), _LN2, f + y)


_LOG2E = np.float32(1.44269504088896341)
_LN2_HI = np.float32(0.693359375)        # ln 2 split in two: n * _LN2_HI is exact
_LN2_LO = np.float32(-2.12194440e-4)
_EXP_LOWEST = np.float32(-87.33)         # below, exp underflows float32's normal range
_ROUND_MAGIC = np.float32(12583039.0)    # 1.5 * 2**23 + 127 (see exp32_in_range)


@njit(fastmath=FASTMATH, **HELPER)
def exp32_in_range(x):
    """e**x for a float32 x in [-87.33, 0] (callers clamp first): ``exp32`` without the
    handling of inputs out of that range, for the hot loops of the logits kernels.

    x = n ln 2 + r with n the integer nearest x / ln 2 and |r| <= ln 2 / 2 (Cody-Waite: ln 2
    in two parts so n * ln 2 is subtracted without rounding error); e**r = 1 + r + r^2 P(r)
    with P of degree 4 (near-minimax on [-ln 2 / 2, ln 2 / 2], fitted for this module:
    relative error 7e-8 in float32 arithmetic), evaluated by Horner's rule down to the two
    unit coefficients, then 2**n planted in the exponent bits. Relative error below 2e-7
    (tested against ``np.exp`` in float64); e**0 == 1 exactly.

    n is rounded by adding the magic number 1.5 * 2**23 + 127 (the fma rounds x / ln 2 to
    an integer, nearest, ties to even), which leaves n + 127 in the low bits of the sum:
    shifted left by 23 they are 2**n's exponent field, the magic's own bits falling off
    the top. That is one subtraction instead of a floor, a conversion to int and an add;
    with Horner's last two steps as fma (not r + r^2 P + 1) the exp costs 13 vector
    instructions, measured 1.3x faster than 16 in a bare loop.
    """
    v = fma(x, _LOG2E, _ROUND_MAGIC)
    n = v - _ROUND_MAGIC  # exact: n in [-126, 0]
    r = fma(n, -_LN2_HI, x)
    r = fma(n, -_LN2_LO, r)
    y = np.float32(1.3814602280e-3)
    y = fma(y, r, np.float32(8.3687156439e-3))
    y = fma(y, r, np.float32(4.1668388993e-2))
    y = fma(y, r, np.float32(1.6666521132e-1))
    y = fma(y, r, np.float32(4.9999994040e-1))
    y = fma(y, r, np.float32(1.0))
    y = fma(y, r, np.float32(1.0))
    return y * _bits_float32(np.int32(_float32_bits(v) << np.int32(23)))


@njit(fastmath=FASTMATH, **HELPER)
def exp32(x):
    """e**x for a float32 x <= 0 (the shifted logits z - max z); 0 below -87.33 and for -inf.

    ``exp32_in_range`` on x clamped to [-87.33, 0], then 0 below that range (results under
    the smallest normal float32, 1.2e-38, are flushed to 0). NaN in, NaN out.
    """
    inside = x >= _EXP_LOWEST  # false for NaN
    scaled = exp32_in_range(x if inside else _EXP_LOWEST)
    return scaled if inside else (x - x if x != x else np.float32(0.0))
