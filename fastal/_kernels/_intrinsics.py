"""LLVM intrinsics the kernels share (Numba only)."""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_BYTE_POINTER = ir.IntType(8).as_pointer()


def _prefetch_byte(builder, pointer):
    """Emit ``llvm.prefetch`` of the byte at ``pointer`` (an i8*): read access, high
    temporal locality, data cache."""
    i32 = ir.IntType(32)
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VoidType(), [_BYTE_POINTER, i32, i32, i32]),
        "llvm.prefetch.p0")
    builder.call(fn, [pointer, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])


@intrinsic
def prefetch(typingctx, array, index):
    """Hint the CPU to load ``array[index]`` (a whole row for 2-D arrays) into cache."""
    if not isinstance(array, types.Array) or array.ndim not in (1, 2):
        return None

    def codegen(context, builder, signature, args):
        array_type, index_type = signature.args
        arr = context.make_array(array_type)(context, builder, args[0])
        intp = context.get_value_type(types.intp)
        row = context.cast(builder, args[1], index_type, types.intp)
        zero = ir.Constant(intp, 0)
        indices = [row] if array_type.ndim == 1 else [row, zero]
        ptr = cgutils.get_item_pointer(context, builder, array_type, arr, indices)
        base = builder.bitcast(ptr, _BYTE_POINTER)
        item = ir.Constant(intp, array_type.dtype.bitwidth // 8)
        if array_type.ndim == 1:
            n_bytes = item
        else:
            n_bytes = builder.mul(cgutils.unpack_tuple(builder, arr.shape, 2)[1], item)
        with cgutils.for_range_slice(builder, zero, n_bytes, ir.Constant(intp, 64)) as (off, _):
            _prefetch_byte(builder, builder.gep(base, [off]))
        return context.get_dummy_value()

    return types.void(array, index), codegen


@intrinsic
def prefetch_at(typingctx, array, index, offset):
    """Hint the CPU to load the cache line ``offset`` bytes past the start of row
    ``index`` of a 2-D array (``index`` must be a row of it; the byte may lie past the
    array's end: a prefetch never faults, and the address is formed without LLVM's
    in-bounds assumption)."""
    if not isinstance(array, types.Array) or array.ndim != 2:
        return None

    def codegen(context, builder, signature, args):
        array_type, index_type, offset_type = signature.args
        arr = context.make_array(array_type)(context, builder, args[0])
        intp = context.get_value_type(types.intp)
        row = context.cast(builder, args[1], index_type, types.intp)
        ptr = cgutils.get_item_pointer(context, builder, array_type, arr,
                                       [row, ir.Constant(intp, 0)])
        offset = context.cast(builder, args[2], offset_type, types.intp)
        address = builder.add(builder.ptrtoint(ptr, intp), offset)
        _prefetch_byte(builder, builder.inttoptr(address, _BYTE_POINTER))
        return context.get_dummy_value()

    return types.void(array, index, offset), codegen


def _int64_pointer(context, builder, signature, args):
    array_type, index_type = signature.args[:2]
    arr = context.make_array(array_type)(context, builder, args[0])
    index = context.cast(builder, args[1], index_type, types.intp)
    return cgutils.get_item_pointer(context, builder, array_type, arr, [index])


@intrinsic
def atomic_add(typingctx, array, index):
    """Add 1 to ``array[index]`` (a 1-D int64 array) atomically, sequentially consistent;
    returns the old value."""
    if not (isinstance(array, types.Array) and array.ndim == 1 and array.dtype == types.int64):
        return None

    def codegen(context, builder, signature, args):
        ptr = _int64_pointer(context, builder, signature, args)
        return builder.atomic_rmw("add", ptr, ir.Constant(ir.IntType(64), 1), "seq_cst")

    return types.int64(array, index), codegen


@intrinsic
def atomic_load(typingctx, array, index):
    """``array[index]`` (a 1-D int64 array) read atomically, sequentially consistent: the
    writes another thread made before its ``atomic_add`` are visible after this read sees
    that add."""
    if not (isinstance(array, types.Array) and array.ndim == 1 and array.dtype == types.int64):
        return None

    def codegen(context, builder, signature, args):
        ptr = _int64_pointer(context, builder, signature, args)
        return builder.load_atomic(ptr, "seq_cst", 8)

    return types.int64(array, index), codegen


@intrinsic
def yield_cpu(typingctx):
    """``sched_yield()``: let another thread run (a spin-wait under oversubscription)."""

    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield")
        builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def as_float32(typingctx, value):
    """``value`` as float32: a float32 itself; a uint16 read as the bits of an IEEE half
    (binary16), converted exactly (every half is a float32)."""
    if value == types.float32:
        return types.float32(value), lambda context, builder, signature, args: args[0]
    if value != types.uint16:
        return None

    def codegen(context, builder, signature, args):
        return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())

    return types.float32(value), codegen


@intrinsic
def half_bits(typingctx, value):
    """The bits (uint16) of the IEEE half nearest the float32 ``value`` (LLVM's
    ``fptrunc``: ties to even, inf past the half range). Callers measure what the rounding
    moved, so nothing depends on how a CPU rounds."""
    if value != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(builder.fptrunc(args[0], ir.HalfType()), ir.IntType(16))

    return types.uint16(value), codegen
