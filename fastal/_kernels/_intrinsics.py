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


#: Lanes of ``lane_sums`` and ``lane_sq``: four vectors of eight float64 (a definition:
#: their sums' bits depend on it, never on the CPU).
LANES = 32
_VECTOR = 8


def _lane_loop(builder, intp, d, add_vector, add_single):
    """Emit the coordinate loop of the lane sums over ``d`` (an intp value): whole groups
    of ``LANES`` coordinates as vectors (``add_vector(offset, k)``: coordinates offset ..
    offset + 7 into vector k), then the last d mod ``LANES`` coordinates, whole vectors
    first, then one at a time (``add_single(j, lane)``, lane = j - (d - d mod LANES))."""
    zero = ir.Constant(intp, 0)
    full = builder.and_(d, ir.Constant(intp, -LANES))
    with cgutils.for_range_slice(builder, zero, full, ir.Constant(intp, LANES)) as (j0, _):
        for k in range(LANES // _VECTOR):
            add_vector(builder.add(j0, ir.Constant(intp, k * _VECTOR)), k)
    for k in range(LANES // _VECTOR - 1):
        offset = builder.add(full, ir.Constant(intp, k * _VECTOR))
        with builder.if_then(builder.icmp_signed(
                "<=", builder.add(offset, ir.Constant(intp, _VECTOR)), d)):
            add_vector(offset, k)
    rest = builder.add(full, builder.and_(builder.sub(d, full), ir.Constant(intp, -_VECTOR)))
    with cgutils.for_range_slice(builder, rest, d, ir.Constant(intp, 1)) as (j, _):
        add_single(j, builder.sub(j, full))


def _combined(builder, vectors):
    """The lanes (four <8 x double>) combined by halving: lanes 0-15 += 16-31, 0-7 += 8-15,
    then s = 4, 2, 1 inside the vector (only lanes < s are used); lane 0, a double."""
    a = builder.fadd(builder.fadd(vectors[0], vectors[2]), builder.fadd(vectors[1], vectors[3]))
    width = _VECTOR
    while width > 1:
        width //= 2
        high = builder.shuffle_vector(
            a, a, ir.Constant(ir.VectorType(ir.IntType(32), _VECTOR),
                              [(h + width) % _VECTOR for h in range(_VECTOR)]))
        a = builder.fadd(a, high)
    return builder.extract_element(a, ir.Constant(ir.IntType(32), 0))


class _Lanes:
    """A stack array of ``LANES`` doubles (in the function's entry block), read and written
    as vectors (promoted to registers in the loop) and as doubles (the last coordinates)."""

    def __init__(self, builder, intp):
        self.builder = builder
        self.intp = intp
        self.vec = ir.VectorType(ir.DoubleType(), _VECTOR)
        self.array = cgutils.alloca_once(builder, ir.ArrayType(ir.DoubleType(), LANES))
        for k in range(LANES // _VECTOR):
            builder.store(ir.Constant(self.vec, None), self._vector(k), align=8)

    def _vector(self, k):
        first = self.builder.gep(self.array, [ir.Constant(self.intp, 0),
                                              ir.Constant(self.intp, k * _VECTOR)])
        return self.builder.bitcast(first, self.vec.as_pointer())

    def add_vector(self, k, terms):
        ptr = self._vector(k)
        self.builder.store(self.builder.fadd(self.builder.load(ptr, align=8), terms), ptr,
                           align=8)

    def add_single(self, lane, term):
        ptr = self.builder.gep(self.array, [ir.Constant(self.intp, 0), lane])
        self.builder.store(self.builder.fadd(self.builder.load(ptr), term), ptr)

    def total(self):
        return _combined(self.builder, [self.builder.load(self._vector(k), align=8)
                                        for k in range(LANES // _VECTOR)])


def _load_vector(builder, ptr, array_type, offset):
    """Eight values of a float32 or float64 array from ``offset``, as <8 x double>."""
    item = ptr.type.pointee
    v = builder.load(builder.bitcast(builder.gep(ptr, [offset]),
                                     ir.VectorType(item, _VECTOR).as_pointer()),
                     align=array_type.dtype.bitwidth // 8)
    return v if item == ir.DoubleType() else builder.fpext(v, ir.VectorType(ir.DoubleType(),
                                                                              _VECTOR))


def _load_single(builder, ptr, j):
    v = builder.load(builder.gep(ptr, [j]))
    return v if v.type == ir.DoubleType() else builder.fpext(v, ir.DoubleType())


@intrinsic
def lane_sums(typingctx, X, row, center, out):
    """``out[0] = sum_j (X[row, j] - center[j])^2`` and
    ``out[1] = sum_j (X[row, j] - center[j]) center[j]`` in float64 (``center`` None:
    ``out[0] = sum_j X[row, j]^2`` alone), summed over ``LANES`` lanes: coordinate j is
    added to lane j mod ``LANES`` (each lane from +0.0, in coordinate order), then the lanes
    are combined by halving (lane h += lane h + s for s = 16, 8, 4, 2, 1). ``X``: a 2-D
    C-contiguous float32 or float64 array; ``center``: None or a 1-D C-contiguous float64
    array of ``X.shape[1]`` values; ``out``: a 1-D C-contiguous float64 array of at least
    2 (1 without a centre) values (not checked).

    Written as LLVM vector operations on <8 x double> (element-wise IEEE subtractions,
    multiplications and additions, no fast-math flags): the bits are the same at any vector
    width (AVX-512, AVX2 and SSE2 split the vectors, never reorder a sum), and there is no
    loop for LLVM's vectoriser to analyse, which keeps a fresh process's compile short (the
    same sums as vectorisable Numba loops cost a cold first BADGE call ~0.5 s more). Call
    it only from functions compiled without ``reassoc`` or ``contract`` (fastal's
    ``FASTMATH``, not ``FAST32``): Numba adds a function's fast-math flags to every
    floating-point instruction of its module, an intrinsic's included. Measured per row
    (one thread, float32 rows in the caches) against four rows at a time in coordinate
    order: d = 32 9 / 19 ns, 256 41 / 150-195 ns, 784 135 / 555 ns.
    """
    with_center = not isinstance(center, types.NoneType)
    ok = (isinstance(X, types.Array) and X.ndim == 2 and X.layout == "C"
          and X.dtype in (types.float32, types.float64)
          and all(isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C"
                  and a.dtype == types.float64 for a in ((center, out) if with_center
                                                         else (out,))))
    if not ok:
        return None

    def codegen(context, builder, signature, args):
        x_type, row_type, c_type, out_type = signature.args
        intp = context.get_value_type(types.intp)
        x_arr = context.make_array(x_type)(context, builder, args[0])
        o_arr = context.make_array(out_type)(context, builder, args[3])
        c_ptr = context.make_array(c_type)(context, builder, args[2]).data \
            if with_center else None
        row = context.cast(builder, args[1], row_type, types.intp)
        d = cgutils.unpack_tuple(builder, x_arr.shape, 2)[1]
        x_ptr = cgutils.get_item_pointer(context, builder, x_type, x_arr,
                                         [row, ir.Constant(intp, 0)])
        sums = [_Lanes(builder, intp) for _ in range(2 if with_center else 1)]

        def terms(x, c):
            u = builder.fsub(x, c) if with_center else x
            return [builder.fmul(u, u)] + ([builder.fmul(u, c)] if with_center else [])

        def add_vector(offset, k):
            c = _load_vector(builder, c_ptr, c_type, offset) if with_center else None
            for lanes, term in zip(sums, terms(_load_vector(builder, x_ptr, x_type, offset), c)):
                lanes.add_vector(k, term)

        def add_single(j, lane):
            c = _load_single(builder, c_ptr, j) if with_center else None
            for lanes, term in zip(sums, terms(_load_single(builder, x_ptr, j), c)):
                lanes.add_single(lane, term)

        _lane_loop(builder, intp, d, add_vector, add_single)
        for slot, lanes in enumerate(sums):
            builder.store(lanes.total(), builder.gep(o_arr.data, [ir.Constant(intp, slot)]))
        return context.get_dummy_value()

    return types.void(X, row, center, out), codegen


@intrinsic
def lane_sq(typingctx, X, row, scale, Y, y_row, y_scale):
    """``sum_j (X[row, j] scale - Y[y_row, j] y_scale)^2`` in float64 (each value taken to
    float64 first; ``Y`` 1-D: ``Y[j]``, ``y_row`` ignored), summed in ``lane_sums``' order
    over ``LANES`` lanes. ``X``, ``Y``: C-contiguous float32 or float64 arrays with rows of
    the same length (not checked). Scales of 1.0 (l2) are exact, so l2 distances are the
    lane sums of ``(x_j - y_j)^2``. The same vector code and rules as ``lane_sums``."""
    ok = (isinstance(X, types.Array) and X.ndim == 2 and X.layout == "C"
          and X.dtype in (types.float32, types.float64)
          and isinstance(Y, types.Array) and Y.ndim in (1, 2) and Y.layout == "C"
          and Y.dtype in (types.float32, types.float64))
    if not ok:
        return None

    def codegen(context, builder, signature, args):
        x_type, row_type, s_type, y_type, yr_type, t_type = signature.args
        intp = context.get_value_type(types.intp)
        zero = ir.Constant(intp, 0)
        x_arr = context.make_array(x_type)(context, builder, args[0])
        y_arr = context.make_array(y_type)(context, builder, args[3])
        row = context.cast(builder, args[1], row_type, types.intp)
        d = cgutils.unpack_tuple(builder, x_arr.shape, 2)[1]
        x_ptr = cgutils.get_item_pointer(context, builder, x_type, x_arr, [row, zero])
        if y_type.ndim == 2:
            y_row = context.cast(builder, args[4], yr_type, types.intp)
            y_ptr = cgutils.get_item_pointer(context, builder, y_type, y_arr, [y_row, zero])
        else:
            y_ptr = y_arr.data
        s = context.cast(builder, args[2], s_type, types.float64)
        t = context.cast(builder, args[5], t_type, types.float64)
        vec = ir.VectorType(ir.DoubleType(), _VECTOR)
        undef = ir.Constant(vec, ir.Undefined)
        first = ir.Constant(ir.IntType(32), 0)
        splat = ir.Constant(ir.VectorType(ir.IntType(32), _VECTOR), [0] * _VECTOR)
        s_vec, t_vec = (builder.shuffle_vector(builder.insert_element(undef, v, first), undef,
                                               splat) for v in (s, t))
        sums = _Lanes(builder, intp)

        def add_vector(offset, k):
            u = builder.fsub(builder.fmul(_load_vector(builder, x_ptr, x_type, offset), s_vec),
                             builder.fmul(_load_vector(builder, y_ptr, y_type, offset), t_vec))
            sums.add_vector(k, builder.fmul(u, u))

        def add_single(j, lane):
            u = builder.fsub(builder.fmul(_load_single(builder, x_ptr, j), s),
                             builder.fmul(_load_single(builder, y_ptr, j), t))
            sums.add_single(lane, builder.fmul(u, u))

        _lane_loop(builder, intp, d, add_vector, add_single)
        return sums.total()

    return types.float64(X, row, scale, Y, y_row, y_scale), codegen
