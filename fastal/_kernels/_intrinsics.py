"""LLVM intrinsics the kernels share (Numba only)."""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


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
        byte_ptr_type = ir.IntType(8).as_pointer()
        base = builder.bitcast(ptr, byte_ptr_type)
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_ptr_type, i32, i32, i32]),
            "llvm.prefetch.p0")
        item = ir.Constant(intp, array_type.dtype.bitwidth // 8)
        if array_type.ndim == 1:
            n_bytes = item
        else:
            n_bytes = builder.mul(cgutils.unpack_tuple(builder, arr.shape, 2)[1], item)
        with cgutils.for_range_slice(builder, zero, n_bytes, ir.Constant(intp, 64)) as (off, _):
            # read access, high temporal locality, data cache
            builder.call(fn, [builder.gep(base, [off]), ir.Constant(i32, 0),
                              ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(array, index), codegen
